package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
