package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v3"
)

// runApp runs the whole CLI (newApp, as main does) in-process and returns
// stdout, stderr and the error main would print.
func runApp(args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	err := newApp(&out, &errb).Run(context.Background(), append([]string{"berth"}, args...))
	return out.String(), errb.String(), err
}

// TestGlobalOptionsFromEnvironment checks the global options through the
// real flag wiring: BERTH_FILE picks the stack file when there is no
// berth.yaml (and -f wins over it), BERTH_PROJECT_NAME renames the stack
// (and -p wins over it), a .env next to the stack file feeds
// interpolation, the process environment wins over .env, and --env-file
// replaces .env.
func TestGlobalOptionsFromEnvironment(t *testing.T) {
	for _, k := range []string{"BERTH_FILE", "BERTH_PROJECT_NAME", "GREETING"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	empty := t.TempDir()
	t.Chdir(empty)
	dir := t.TempDir()
	stack := filepath.Join(dir, "stack.yaml")
	other := filepath.Join(dir, "other.yaml")
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	body := "instances:\n  web:\n    backend: lxc\n    template: busybox\n    environment:\n      GREETING: ${GREETING:-unset}\n"
	write(stack, "name: fromfile\nx-note: extension keys are ignored\n"+body)
	write(other, "name: otherfile\n"+body)

	if _, _, err := runApp("validate"); err == nil || !strings.Contains(err.Error(), "berth.yaml") {
		t.Fatalf("validate in an empty directory = %v, want a missing berth.yaml error", err)
	}
	t.Setenv("BERTH_FILE", stack)
	if out, _, err := runApp("validate"); err != nil || !strings.Contains(out, "stack fromfile is valid") {
		t.Errorf("BERTH_FILE: validate = %q, %v", out, err)
	}
	if out, _, err := runApp("-f", other, "validate"); err != nil || !strings.Contains(out, "stack otherfile is valid") {
		t.Errorf("-f over BERTH_FILE: validate = %q, %v", out, err)
	}

	t.Setenv("BERTH_PROJECT_NAME", "fromenv")
	if out, _, err := runApp("validate"); err != nil || !strings.Contains(out, "stack fromenv is valid") {
		t.Errorf("BERTH_PROJECT_NAME: validate = %q, %v", out, err)
	}
	if out, _, err := runApp("-p", "fromflag", "validate"); err != nil || !strings.Contains(out, "stack fromflag is valid") {
		t.Errorf("-p over BERTH_PROJECT_NAME: validate = %q, %v", out, err)
	}
	if _, _, err := runApp("-p", "Bad_Name!", "validate"); err == nil {
		t.Error("-p with an invalid name accepted")
	}
	os.Unsetenv("BERTH_PROJECT_NAME")

	greeting := func(args ...string) string {
		t.Helper()
		out, _, err := runApp(append(args, "config", "--format", "json")...)
		if err != nil {
			t.Fatalf("config %v: %v", args, err)
		}
		if strings.Contains(out, "x-note") {
			t.Errorf("config shows the x- extension key:\n%s", out)
		}
		for _, v := range []string{"unset", "from-dotenv", "from-envfile", "from-process"} {
			if strings.Contains(out, `"`+v+`"`) {
				return v
			}
		}
		t.Fatalf("config output has no GREETING:\n%s", out)
		return ""
	}
	if got := greeting(); got != "unset" {
		t.Errorf("without .env: GREETING = %s", got)
	}
	write(filepath.Join(dir, ".env"), "GREETING=from-dotenv\n")
	if got := greeting(); got != "from-dotenv" {
		t.Errorf(".env next to the stack file: GREETING = %s", got)
	}
	envFile := filepath.Join(t.TempDir(), "other.env")
	write(envFile, "GREETING=from-envfile\n")
	if got := greeting("--env-file", envFile); got != "from-envfile" {
		t.Errorf("--env-file: GREETING = %s", got)
	}
	t.Setenv("GREETING", "from-process")
	if got := greeting("--env-file", envFile); got != "from-process" {
		t.Errorf("process environment over --env-file: GREETING = %s", got)
	}
	if _, _, err := runApp("--env-file", filepath.Join(dir, "missing.env"), "validate"); err == nil || !strings.Contains(err.Error(), "missing.env") {
		t.Errorf("--env-file of a missing file = %v", err)
	}
}

// TestKeepOrphansParallelAndVersionFlags checks, through the real flag
// wiring: --keep-orphans and BERTH_KEEP_ORPHANS keep an orphan out of
// plan and up (a plain up then deletes it); BERTH_PARALLEL reaches the
// apply settings; --parallel defaults to 8 on up and down; --version
// prints the version.
func TestKeepOrphansParallelAndVersionFlags(t *testing.T) {
	dir := t.TempDir()
	stack := filepath.Join(dir, "berth.yaml")
	mem := t.TempDir()
	t.Setenv(testDriverEnv, mem)
	t.Setenv("BERTH_STATE_DIR", filepath.Join(dir, "state"))
	t.Setenv("BERTH_PROGRESS", "plain")
	t.Setenv("BERTH_KEEP_ORPHANS", "")
	t.Setenv("BERTH_PARALLEL", "")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(stack, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	live := func() string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(mem, "lxc.json"))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	write(demoStack + "  cache:\n    backend: lxc\n    template: {type: busybox}\n")
	if out, errs, err := runApp("-f", stack, "up"); err != nil {
		t.Fatalf("up: %v\n%s%s", err, out, errs)
	}
	write(demoStack) // cache is now an orphan
	if out, _, err := runApp("-f", stack, "plan", "--keep-orphans"); err != nil || strings.Contains(out, "delete") || !strings.Contains(out, "No changes.") {
		t.Errorf("plan --keep-orphans = %v:\n%s", err, out)
	}
	if out, _, err := runApp("-f", stack, "up", "--keep-orphans"); err != nil || !strings.Contains(live(), `"demo-cache"`) {
		t.Errorf("up --keep-orphans = %v, cache gone:\n%s", err, out)
	}
	t.Setenv("BERTH_KEEP_ORPHANS", "true")
	if out, _, err := runApp("-f", stack, "plan"); err != nil || strings.Contains(out, "delete") {
		t.Errorf("plan with BERTH_KEEP_ORPHANS=true = %v:\n%s", err, out)
	}
	os.Unsetenv("BERTH_KEEP_ORPHANS")
	if out, _, err := runApp("-f", stack, "plan"); err != nil || !strings.Contains(out, "delete cache") {
		t.Errorf("plan without --keep-orphans = %v, want a delete of cache:\n%s", err, out)
	}
	if out, _, err := runApp("-f", stack, "up"); err != nil || strings.Contains(live(), `"demo-cache"`) {
		t.Errorf("up without --keep-orphans = %v, cache kept:\n%s", err, out)
	}

	t.Setenv("BERTH_PARALLEL", "0")
	for _, cmd := range []string{"up", "down"} {
		if _, _, err := runApp("-f", stack, cmd); err == nil || !strings.Contains(err.Error(), "--parallel 0") {
			t.Errorf("%s with BERTH_PARALLEL=0 = %v, want the --parallel check", cmd, err)
		}
	}
	for _, c := range newApp(io.Discard, io.Discard).Commands {
		for _, f := range c.Flags {
			if p, ok := f.(*cli.IntFlag); ok && p.Name == "parallel" && p.Value != 8 {
				t.Errorf("%s --parallel defaults to %d, want 8", c.Name, p.Value)
			}
		}
	}

	if out, _, err := runApp("--version"); err != nil || !strings.Contains(out, "berth version "+version) {
		t.Errorf("--version = %v, %q", err, out)
	}
}

// TestDownConfirmsOnATerminal: `down` without --yes asks on a terminal;
// "n" changes nothing, "y" deletes; --yes never asks.
func TestDownConfirmsOnATerminal(t *testing.T) {
	e := newCmdEnv(t, demoStack)
	if err := e.up(nil); err != nil {
		t.Fatal(err)
	}
	e.resetCalls()
	err := e.down(func(o *downOptions) { o.Yes = false; o.st.InTTY = true; o.st.In = strings.NewReader("n\n") })
	if err == nil || !strings.Contains(err.Error(), "cancelled") || !strings.Contains(e.out.String(), "[y/N]") {
		t.Errorf("declined down = %v:\n%s", err, e.out.String())
	}
	if got := e.mutating(); len(got) != 0 {
		t.Errorf("declined down made mutating calls: %v", got)
	}
	if n := len(e.driver("lxc").Objects()); n != 2 {
		t.Fatalf("objects after a declined down: %d, want 2", n)
	}
	if err := e.down(func(o *downOptions) { o.Yes = false; o.st.InTTY = true; o.st.In = strings.NewReader("y\n") }); err != nil {
		t.Fatal(err)
	}
	if n := len(e.driver("lxc").Objects()); n != 0 {
		t.Errorf("objects after a confirmed down: %d", n)
	}
	if err := e.up(nil); err != nil {
		t.Fatal(err)
	}
	if err := e.down(func(o *downOptions) { o.st.InTTY = true; o.st.In = strings.NewReader("") }); err != nil || strings.Contains(e.out.String(), "[y/N]") {
		t.Errorf("down --yes on a terminal = %v, asked anyway:\n%s", err, e.out.String())
	}
}
