package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// TestNoColorOnATerminal runs `berth plan` through the real CLI with its
// stdout on a terminal: the plan is coloured, and not at all once NO_COLOR
// is set (https://no-color.org) or TERM is dumb.
func TestNoColorOnATerminal(t *testing.T) {
	dir := t.TempDir()
	stack := filepath.Join(dir, "berth.yaml")
	if err := os.WriteFile(stack, []byte(demoStack), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(testDriverEnv, t.TempDir())
	t.Setenv("BERTH_STATE_DIR", filepath.Join(dir, "state"))
	plan := func(env map[string]string) string {
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
		err := newApp(slave, &errb).Run(context.Background(), []string{"berth", "-f", stack, "plan"})
		slave.Close()
		<-done
		if err != nil {
			t.Fatalf("plan: %v\n%s", err, errb.String())
		}
		if !strings.Contains(got.String(), "create") {
			t.Fatalf("plan on a terminal printed:\n%q", got.String())
		}
		return got.String()
	}
	if out := plan(map[string]string{"NO_COLOR": "", "TERM": "xterm"}); !strings.Contains(out, "\x1b[") {
		t.Errorf("no colour on a terminal:\n%q", out)
	}
	if out := plan(map[string]string{"NO_COLOR": "1", "TERM": "xterm"}); strings.Contains(out, "\x1b[") {
		t.Errorf("colour with NO_COLOR=1:\n%q", out)
	}
	if out := plan(map[string]string{"NO_COLOR": "", "TERM": "dumb"}); strings.Contains(out, "\x1b[") {
		t.Errorf("colour with TERM=dumb:\n%q", out)
	}
}
