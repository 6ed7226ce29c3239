package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/executor"
)

// TestBinaryExitCodes runs the built berth binary, with the in-memory
// test driver standing in for every backend, and checks the exit statuses
// scripts rely on.
func TestBinaryExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "berth")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	stack := filepath.Join(dir, "berth.yaml")
	if err := os.WriteFile(stack, []byte(demoStack), 0o644); err != nil {
		t.Fatal(err)
	}
	memDir := filepath.Join(dir, "mem")
	stateDir := filepath.Join(dir, "state")
	if err := os.Mkdir(memDir, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), testDriverEnv+"="+memDir, "BERTH_STATE_DIR="+stateDir, "BERTH_FILE="+stack, "NO_COLOR=")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, out.String(), errb.String()
		case errors.As(err, &ee):
			return ee.ExitCode(), out.String(), errb.String()
		}
		t.Fatalf("run %v: %v", args, err)
		return -1, "", ""
	}
	steps := []struct {
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{[]string{"plan", "--detailed-exitcode"}, 2, "create", ""},
		{[]string{"up"}, 0, "2 created", ""},
		{[]string{"plan", "--detailed-exitcode"}, 0, "No changes.", ""},
		{[]string{"up"}, 0, "No changes.", ""},
		{[]string{"exec", "web", "--", "sh", "-c", "exit 3"}, 3, "", ""},
		{[]string{"exec", "web", "echo", "-n", "hi"}, 0, "-n hi", ""},
		{[]string{"ps", "--json"}, 0, `"instance": "web"`, ""},
		{[]string{"up", "--parallel", "0"}, 1, "", "--parallel 0"},
		{[]string{"-f", filepath.Join(dir, "missing.yaml"), "plan"}, 1, "", "missing.yaml"},
		{[]string{"down"}, 0, "2 deleted", ""},
		{[]string{"plan", "--detailed-exitcode"}, 2, "", ""},
	}
	for _, s := range steps {
		code, out, errs := run(s.args...)
		if code != s.code || !strings.Contains(out, s.inStdout) || !strings.Contains(errs, s.inStderr) {
			t.Errorf("berth %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(s.args, " "), code, s.code, out, errs)
		}
	}

	lock, err := executor.LockStack(stateDir, "demo")
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs := run("up")
	lock.Unlock()
	if code != 1 || !strings.Contains(errs, "pid") {
		t.Errorf("up while locked: exit %d, stderr:\n%s", code, errs)
	}
}

// TestBinaryInterrupt sends SIGINT to a running `berth up` whose second
// create hangs: the first signal must roll back (nothing left, exit 130);
// when the rollback hangs too, a second signal must exit at once with 130.
func TestBinaryInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "berth")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	stack := filepath.Join(dir, "berth.yaml")
	if err := os.WriteFile(stack, []byte(demoStack), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, signals := range []int{1, 2} {
		memDir := filepath.Join(dir, fmt.Sprintf("mem%d", signals))
		if err := os.Mkdir(memDir, 0o755); err != nil {
			t.Fatal(err)
		}
		block := "create:demo-web"
		if signals == 2 {
			// The rollback's stop of db hangs too (rollback is not
			// cancellable): only the second signal can end the run.
			block += ",stop:demo-db"
		}
		cmd := exec.Command(bin, "up", "--progress", "plain")
		cmd.Env = append(os.Environ(), testDriverEnv+"="+memDir, testDriverBlockEnv+"="+block,
			"BERTH_STATE_DIR="+filepath.Join(dir, "state"), "BERTH_FILE="+stack)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		errb := &syncBuffer{}
		cmd.Stderr = errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait, by output not by time, until web's create is in flight.
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "web create running: create demo-web") {
				break
			}
		}
		for i := 0; i < signals; i++ {
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatalf("signal: %v (did berth end early?)\nstderr:\n%s", err, errb.String())
			}
			if i == 0 && signals == 2 {
				// The second signal only counts once the first was seen.
				// Polling, not a timed assertion: the deadline only
				// keeps a broken run from hanging the suite.
				deadline := time.Now().Add(time.Minute)
				for !strings.Contains(errb.String(), "interrupt again") {
					if time.Now().After(deadline) {
						cmd.Process.Kill()
						t.Fatalf("no notice of the first signal:\n%s", errb.String())
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
		}
		go io.Copy(io.Discard, stdout)
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("%d signal(s): berth up ended with %v, want exit 130\nstderr:\n%s", signals, err, errb.String())
		}
		data, _ := os.ReadFile(filepath.Join(memDir, "lxc.json"))
		left := strings.Count(string(data), `"name": "demo-`)
		switch signals {
		case 1:
			if left != 0 || !strings.Contains(errb.String(), "Interrupted.") || !strings.Contains(errb.String(), "delete demo-db") {
				t.Errorf("one signal: %d objects left, want a full rollback\nstderr:\n%s", left, errb.String())
			}
		case 2:
			if !strings.Contains(errb.String(), "aborted") {
				t.Errorf("two signals: stderr lacks the abort notice:\n%s", errb.String())
			}
		}
	}
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
