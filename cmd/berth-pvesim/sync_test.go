package main

import (
	"bytes"
	"sync"
)

var outMu sync.Mutex

type syncWriter struct{ b *bytes.Buffer }

func (w *syncWriter) Write(p []byte) (int, error) {
	outMu.Lock()
	defer outMu.Unlock()
	return w.b.Write(p)
}

func snapshot(b *bytes.Buffer) []byte {
	outMu.Lock()
	defer outMu.Unlock()
	return append([]byte(nil), b.Bytes()...)
}
