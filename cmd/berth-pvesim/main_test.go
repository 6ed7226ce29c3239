package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"
)

func TestRunPrintsEndpointAndToken(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, options{addr: "127.0.0.1:0", nodes: 2, secret: "s3cret"}, &syncWriter{b: &out})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !regexp.MustCompile(`Press Ctrl-C`).Match(snapshot(&out)) {
		if time.Now().After(deadline) {
			t.Fatalf("no banner: %q", snapshot(&out))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := snapshot(&out)
	for _, re := range []string{
		`endpoint: +https://127\.0\.0\.1:\d+/api2/json`,
		`fingerprint: +([0-9A-F]{2}:){31}[0-9A-F]{2}`,
		`token id: +root@pam!berth`,
		`token secret: +s3cret`,
	} {
		if !regexp.MustCompile(re).Match(got) {
			t.Errorf("banner lacks %s:\n%s", re, got)
		}
	}
}
