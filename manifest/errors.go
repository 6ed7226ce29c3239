package manifest

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// FieldError is one problem in a stack file, located at a YAML node. Load
// returns every FieldError it finds at once, joined with errors.Join.
type FieldError struct {
	File string // the stack file (or .env file) as the user named it
	Line int    // 1-based; 0 when the problem has no position (a -p flag value)
	Col  int
	Path string // dotted field path: instances.web.memory, instances.web.networks[0].ip
	Msg  string
}

// Error renders FILE:LINE:COL: PATH: MSG, leaving out the parts that are empty.
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// FieldErrors returns the FieldErrors inside err (a single one or a join),
// in order. It returns nil for other errors.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		var fe *FieldError
		if errors.As(e, &fe) && e == error(fe) {
			out = append(out, fe)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		if errors.As(e, &fe) {
			out = append(out, fe)
		}
	}
	walk(err)
	return out
}

// errorList collects FieldErrors while a file loads.
type errorList struct {
	file    string
	errs    []*FieldError
	seen    map[string]bool
	dropped int // errors past maxErrors
}

// maxErrors bounds the report: past it, one line says how many were left out.
const maxErrors = 100

func (l *errorList) add(p pos, path string, format string, args ...any) {
	if len(l.errs) >= maxErrors {
		l.dropped++
		return
	}
	e := &FieldError{File: l.file, Line: p.Line, Col: p.Col, Path: path, Msg: fmt.Sprintf(format, args...)}
	key := e.Error()
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	if l.seen[key] {
		return
	}
	l.seen[key] = true
	l.errs = append(l.errs, e)
}

func (l *errorList) empty() bool { return len(l.errs) == 0 }

// err sorts the collected errors by position then path and joins them.
func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	sort.SliceStable(l.errs, func(i, j int) bool {
		a, b := l.errs[i], l.errs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Msg < b.Msg
	})
	errs := make([]error, len(l.errs), len(l.errs)+1)
	for i, e := range l.errs {
		errs[i] = e
	}
	if l.dropped > 0 {
		errs = append(errs, &FieldError{File: l.file, Msg: fmt.Sprintf("and %d more problems not shown", l.dropped)})
	}
	return errors.Join(errs...)
}
