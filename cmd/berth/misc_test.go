package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func typeName(v any) string { return fmt.Sprintf("%T", v) }

func TestSignalsFirstCancelsSecondAborts(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	var errw bytes.Buffer
	exited := make(chan int, 1)
	ctx, in := watchSignals(t.Context(), sigs, &errw, func(code int) { exited <- code })
	defer in.Stop()
	if in.Interrupted() {
		t.Fatal("interrupted before any signal")
	}
	sigs <- syscall.SIGINT
	<-ctx.Done()
	if !in.Interrupted() {
		t.Error("first signal not recorded")
	}
	select {
	case code := <-exited:
		t.Fatalf("first signal exited with %d; it must only cancel", code)
	default:
	}
	sigs <- syscall.SIGTERM
	if code := <-exited; code != 130 {
		t.Errorf("second signal exit code = %d, want 130", code)
	}
	if !strings.Contains(errw.String(), "interrupt again to abort") || !strings.Contains(errw.String(), "aborted") {
		t.Errorf("signal messages: %q", errw.String())
	}
}

func TestSignalsStopWithoutSignal(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	ctx, in := watchSignals(t.Context(), sigs, &bytes.Buffer{}, func(int) { t.Error("exit called") })
	in.Stop()
	<-ctx.Done()
	if in.Interrupted() {
		t.Error("Stop counted as an interrupt")
	}
}

func TestFmtAgeAndElapsed(t *testing.T) {
	ages := map[time.Duration]string{-time.Second: "0s", 42 * time.Second: "42s", 5*time.Minute + 59*time.Second: "5m", 3 * time.Hour: "3h", 47 * time.Hour: "47h", 72 * time.Hour: "3d"}
	for d, want := range ages {
		if got := fmtAge(d); got != want {
			t.Errorf("fmtAge(%s) = %q, want %q", d, got, want)
		}
	}
	elapsed := map[time.Duration]string{400 * time.Millisecond: "0.4s", 12300 * time.Millisecond: "12.3s", 125 * time.Second: "2m05s"}
	for d, want := range elapsed {
		if got := fmtElapsed(d); got != want {
			t.Errorf("fmtElapsed(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestTerminalDetection(t *testing.T) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	if isTerminal(devnull) {
		t.Error("/dev/null counted as a terminal")
	}
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer counted as a terminal")
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if colorAllowed(env(map[string]string{"NO_COLOR": "1"})) {
		t.Error("NO_COLOR not honoured")
	}
	if colorAllowed(env(map[string]string{"TERM": "dumb"})) {
		t.Error("TERM=dumb not honoured")
	}
	if !colorAllowed(env(map[string]string{"TERM": "xterm"})) {
		t.Error("colour refused on xterm")
	}
}

func TestConfirm(t *testing.T) {
	for in, want := range map[string]bool{"y\n": true, "YES\n": true, "n\n": false, "\n": false, "": false, "sure\n": false} {
		var out bytes.Buffer
		if got := confirm(streams{In: strings.NewReader(in), Out: &out}, "Go?"); got != want {
			t.Errorf("answer %q: confirm = %t, want %t", in, got, want)
		}
		if out.String() != "Go? [y/N] " {
			t.Errorf("prompt = %q", out.String())
		}
	}
}
