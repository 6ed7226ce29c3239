package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testenv"
)

// openPTY opens a pseudo-terminal pair with /dev/ptmx (no extra
// dependency): the master to read from, the slave to hand to berth as
// its stdout.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		testenv.Unavailable(t, "the terminal colour test", fmt.Sprintf("no /dev/ptmx: %v", err))
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err == nil {
		err = unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0)
	}
	if err != nil {
		m.Close()
		t.Fatalf("pty: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("pty slave: %v", err)
	}
	return m, s
}

// TestNoColorOnATerminal runs `berth plan` and `berth up` through the real
// CLI with stdout on a terminal: the plan is coloured, and not at all once
// NO_COLOR is set (https://no-color.org) or TERM is dumb; up shows its live
// view, coloured unless NO_COLOR is set.
func TestNoColorOnATerminal(t *testing.T) {
	dir := t.TempDir()
	stack := filepath.Join(dir, "berth.yaml")
	if err := os.WriteFile(stack, []byte(demoStack), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(testDriverEnv, t.TempDir())
	t.Setenv("BERTH_STATE_DIR", filepath.Join(dir, "state"))
	plan := func(env map[string]string) string { return onPTY(t, stack, env, "plan") }
	if out := plan(map[string]string{"NO_COLOR": "", "TERM": "xterm"}); !strings.Contains(out, "\x1b[") {
		t.Errorf("no colour on a terminal:\n%q", out)
	}
	if out := plan(map[string]string{"NO_COLOR": "1", "TERM": "xterm"}); strings.Contains(out, "\x1b[") {
		t.Errorf("colour with NO_COLOR=1:\n%q", out)
	}
	if out := plan(map[string]string{"NO_COLOR": "", "TERM": "dumb"}); strings.Contains(out, "\x1b[") {
		t.Errorf("colour with TERM=dumb:\n%q", out)
	}

	// `up` with the default --progress auto: on a terminal the live view
	// redraws in place (cursor movement) and colours its marks; NO_COLOR
	// keeps the redraws and drops every colour.
	sgr := regexp.MustCompile(`\x1b\[[0-9;]*m`)
	up := onPTY(t, stack, map[string]string{"NO_COLOR": "", "TERM": "xterm", "BERTH_PROGRESS": ""}, "up", "--yes")
	if !strings.Contains(up, "\x1b[2K") || !sgr.MatchString(up) || !strings.Contains(up, "Done in") {
		t.Errorf("up on a terminal: no live coloured view:\n%q", up)
	}
	onPTY(t, stack, nil, "down", "--yes")
	up = onPTY(t, stack, map[string]string{"NO_COLOR": "1", "TERM": "xterm", "BERTH_PROGRESS": ""}, "up", "--yes")
	if !strings.Contains(up, "\x1b[2K") || sgr.MatchString(up) {
		t.Errorf("up on a terminal with NO_COLOR=1: want redraws without colour:\n%q", up)
	}
}

// onPTY runs berth args with stdout on a fresh terminal and env set, and
// returns what the terminal showed.
func onPTY(t *testing.T, stack string, env map[string]string, args ...string) string {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	master, slave := openPTY(t)
	defer master.Close()
	var got bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&got, master); close(done) }() // ends with EIO once the slave is closed
	var errb bytes.Buffer
	err := newApp(slave, &errb).Run(context.Background(), append([]string{"berth", "-f", stack}, args...))
	slave.Close()
	<-done
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, errb.String())
	}
	return got.String()
}
