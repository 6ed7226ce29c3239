package executor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/memdriver"
	"github.com/berth-dev/berth/manifest"
	"github.com/berth-dev/berth/planner"
)

func TestLockStack(t *testing.T) {
	dir := t.TempDir()
	l, err := LockStack(dir, "demo")
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockStack(dir, "demo")
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, drivers.ErrLocked) {
		t.Fatalf("second lock: %v, want a *LockedError matching drivers.ErrLocked", err)
	}
	host, _ := os.Hostname()
	want := fmt.Sprintf("stack demo is locked by pid %d on host %s since ", os.Getpid(), host)
	if !strings.HasPrefix(err.Error(), want) || le.Since.IsZero() || time.Since(le.Since) < 0 {
		t.Errorf("error %q, want prefix %q and a since time", err, want)
	}
	// Other stacks are independent.
	other, err := LockStack(dir, "other")
	if err != nil {
		t.Fatalf("lock of another stack: %v", err)
	}
	other.Unlock()
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := LockStack(dir, "demo")
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	l2.Unlock()
	if _, err := LockStack(dir, "../escape"); err == nil {
		t.Error("stack name with a slash accepted")
	}
}

func TestDefaultStateDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/x/state")
	if got := DefaultStateDir(); got != "/x/state/berth" {
		t.Errorf("with XDG_STATE_HOME: %s", got)
	}
	t.Setenv("XDG_STATE_HOME", "")
	want := "/var/lib/berth"
	if os.Geteuid() != 0 {
		home, _ := os.UserHomeDir()
		want = filepath.Join(home, ".local/state/berth")
	}
	if got := DefaultStateDir(); got != want {
		t.Errorf("DefaultStateDir() = %s, want %s", got, want)
	}
}

func readJournal(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestJournalOfAppliesAndRecover(t *testing.T) {
	dir := t.TempDir()
	j, err := OpenJournal(dir, testStack)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if r, err := j.Recover(); r != nil || err != nil {
		t.Fatalf("empty journal: %v, %v", r, err)
	}

	// A successful apply ends with its marker: nothing to recover.
	d := newMem()
	st := mkStack(inst("a"), inst("b", "a"))
	o := opts(st, d, 2)
	o.Journal = j
	p := mkPlan(t, st, d, planner.ModeUp)
	if _, err := Apply(context.Background(), p, o); err != nil {
		t.Fatal(err)
	}
	text := readJournal(t, j.Path())
	for _, want := range []string{`"type":"begin"`, `"fingerprint":"` + p.Fingerprint(), `"type":"op-start"`,
		`"op":"create"`, `"name":"demo-b"`, `"type":"node-done"`, `"type":"end","outcome":"applied"`} {
		if !strings.Contains(text, want) {
			t.Errorf("journal lacks %s:\n%s", want, text)
		}
	}
	if r, err := j.Recover(); r != nil || err != nil {
		t.Fatalf("finished apply: Recover = %v, %v; want nil", r, err)
	}

	// A failed apply records the failure and every rollback step.
	d2 := newMem()
	d2.FailOn(memdriver.OpStart, obj("b"))
	o.Driver = func(string, string) (drivers.Driver, error) { return d2, nil }
	if _, err := Apply(context.Background(), mkPlan(t, st, d2, planner.ModeUp), o); err == nil {
		t.Fatal("apply succeeded")
	}
	text = readJournal(t, j.Path())
	if strings.Count(text, `"type":"begin"`) != 1 {
		t.Error("journal was not truncated at the new apply")
	}
	for _, want := range []string{`"type":"node-failed","node":"b"`, `"type":"rollback-start"`, `"type":"rollback-step"`,
		`"op":"rollback delete"`,
		`"outcome":"rolled-back"`} {
		if !strings.Contains(text, want) {
			t.Errorf("journal lacks %s:\n%s", want, text)
		}
	}
}

// A journal cut off mid-apply (what kill -9 leaves, torn last line
// included) reports what was in flight.
func TestRecoverInterrupted(t *testing.T) {
	lines := []string{
		`{"time":"2026-11-27T01:00:00Z","type":"begin","stack":"demo","fingerprint":"abc","pid":4242,"host":"box","nodes":["create a","create b"]}`,
		`{"time":"2026-11-27T01:00:01Z","type":"node-start","node":"a","instance":"a","action":"create"}`,
		`{"time":"2026-11-27T01:00:01Z","type":"op-start","node":"a","op":"create","ref":{"backend":"lxc","name":"demo-a"}}`,
		`{"time":"2026-11-27T01:00:02Z","type":"op-done","node":"a","op":"create","ref":{"backend":"lxc","name":"demo-a"}}`,
		`{"time":"2026-11-27T01:00:02Z","type":"op-start","node":"a","op":"start","ref":{"backend":"lxc","name":"demo-a"}}`,
		`{"time":"2026-11-27T01:00:02Z","type":"op-done","node":"a","op":"start","ref":{"backend":"lxc","name":"demo-a"}}`,
		`{"time":"2026-11-27T01:00:02Z","type":"node-done","node":"a","instance":"a","action":"create"}`,
		`{"time":"2026-11-27T01:00:03Z","type":"op-start","node":"b","op":"create","ref":{"backend":"lxc","name":"demo-b"}}`,
		`{"time":"2026-11-27T01:00:03Z","type":"op-do`,
	}
	r := recoverJournal(t, strings.Join(lines, "\n")) // the last line is cut short
	if r.PID != 4242 || r.Host != "box" || r.Fingerprint != "abc" || len(r.InFlight) != 1 ||
		r.InFlight[0].Op != "create" || r.InFlight[0].Ref.Name != "demo-b" || strings.Join(r.Done, ",") != "create a" {
		t.Errorf("recovery = %+v", r)
	}
	want := "the previous apply of stack demo (pid 4242 on host box, started 2026-11-27T01:00:00Z) did not finish; in flight: create demo-b (node b); done: create a."
	if !strings.HasPrefix(r.String(), want) {
		t.Errorf("report:\n%s\nwant prefix:\n%s", r, want)
	}
}

// recoverJournal writes content as stack demo's journal and returns what
// Recover makes of it, failing the test when it finds nothing.
func recoverJournal(t *testing.T, content string) *Recovery {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "demo.journal"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := OpenJournal(dir, "demo")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	r, err := j.Recover()
	if err != nil || r == nil {
		t.Fatalf("Recover = %v, %v", r, err)
	}
	return r
}

// A crash during a rollback reports the undo call that was running.
func TestRecoverDuringRollback(t *testing.T) {
	lines := []string{
		`{"time":"2026-11-27T01:00:00Z","type":"begin","stack":"demo","fingerprint":"abc","pid":7,"host":"box"}`,
		`{"time":"2026-11-27T01:00:01Z","type":"op-start","node":"a","op":"create","ref":{"backend":"lxc","name":"demo-a"}}`,
		`{"time":"2026-11-27T01:00:01Z","type":"op-done","node":"a","op":"create","ref":{"backend":"lxc","name":"demo-a"}}`,
		`{"time":"2026-11-27T01:00:02Z","type":"op-start","node":"b","op":"create","ref":{"backend":"lxc","name":"demo-b"}}`,
		`{"time":"2026-11-27T01:00:02Z","type":"op-failed","node":"b","op":"create","ref":{"backend":"lxc","name":"demo-b"},"error":"boom"}`,
		`{"time":"2026-11-27T01:00:02Z","type":"node-failed","node":"b","action":"create","error":"boom"}`,
		`{"time":"2026-11-27T01:00:02Z","type":"rollback-start"}`,
		`{"time":"2026-11-27T01:00:03Z","type":"op-start","node":"a","op":"rollback delete","ref":{"backend":"lxc","name":"demo-a"}}`,
	}
	r := recoverJournal(t, strings.Join(lines, "\n")+"\n")
	if !r.RollingBack || len(r.InFlight) != 1 || r.InFlight[0].Op != "rollback delete" || strings.Join(r.Failed, ",") != "create b" {
		t.Errorf("recovery = %+v", r)
	}
	if !strings.Contains(r.String(), "(it was rolling back); in flight: rollback delete demo-a (node a)") {
		t.Errorf("report: %s", r)
	}
}

func TestJournalHasNoSecrets(t *testing.T) {
	const secret = "hunter2-very-secret"
	dir := t.TempDir()
	j, err := OpenJournal(dir, testStack)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	d := newMem()
	vm := inst("vm")
	vm.CloudInit = &manifest.CloudInit{User: "root", Password: manifest.Secret(secret)}
	st := mkStack(vm, inst("web", "vm"))
	st.Providers = map[string]*manifest.Provider{"pve": {Name: "pve", Type: "proxmox", Password: manifest.Secret(secret), TokenSecret: manifest.Secret(secret)}}
	vm.Provider = "pve"
	d.FailOn(memdriver.OpCreate, obj("web"))
	var events strings.Builder
	o := opts(st, d, 2)
	o.Journal = j
	o.Events = func(e Event) { fmt.Fprintf(&events, "%+v %v\n", e, e.Err) }
	res, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), o)
	if err == nil {
		t.Fatal("apply succeeded")
	}
	text := readJournal(t, j.Path())
	for where, s := range map[string]string{"journal": text, "events": events.String(), "error": err.Error(), "result": fmt.Sprintf("%+v", res)} {
		if strings.Contains(s, secret) {
			t.Errorf("secret leaked into the %s:\n%s", where, s)
		}
	}
	if !strings.Contains(text, `"type":"end"`) {
		t.Errorf("journal incomplete:\n%s", text)
	}
}

// The helper process for TestCrashRecovery: it takes the lock, opens the
// journal and applies a plan whose second create never returns, until the
// parent kills it with SIGKILL.
func TestHelperCrashingApply(t *testing.T) {
	dir := os.Getenv("BERTH_EXECUTOR_CRASH_HELPER")
	if dir == "" {
		t.Skip("helper process for TestCrashRecovery")
	}
	l, err := LockStack(dir, testStack)
	if err != nil {
		fmt.Println("lock:", err)
		os.Exit(3)
	}
	defer l.Unlock()
	j, err := OpenJournal(dir, testStack)
	if err != nil {
		fmt.Println("journal:", err)
		os.Exit(3)
	}
	d := newMem()
	d.Block(memdriver.OpCreate, obj("b"))
	go func() { time.Sleep(time.Hour) }() // keeps the runtime's deadlock detector quiet
	st := mkStack(inst("a"), inst("b", "a"))
	o := opts(st, d, 2)
	o.Journal = j
	Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), o)
	os.Exit(4) // never reached: the create of b blocks until the kill
}

// A real berth process killed with SIGKILL mid-apply: while it lives the
// lock names it; once it is dead the lock is free and the journal reports
// the create that was in flight.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCrashingApply$", "-test.v")
	cmd.Env = append(os.Environ(), "BERTH_EXECUTOR_CRASH_HELPER="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { // drain the helper's output
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			t.Log("helper:", sc.Text())
		}
	}()
	defer cmd.Process.Kill()

	jpath := filepath.Join(dir, testStack+".journal")
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(jpath)
		if strings.Contains(string(b), `"type":"op-start","node":"b"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("helper never reached the create of b; journal:\n%s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err = LockStack(dir, testStack)
	var le *LockedError
	if !errors.As(err, &le) || le.PID != cmd.Process.Pid {
		t.Fatalf("lock while the helper runs: %v, want held by pid %d", err, cmd.Process.Pid)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	l, err := LockStack(dir, testStack)
	if err != nil {
		t.Fatalf("lock after the holder was killed: %v", err)
	}
	defer l.Unlock()
	j, err := OpenJournal(dir, testStack)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	r, err := j.Recover()
	if err != nil || r == nil {
		t.Fatalf("Recover after kill -9 = %v, %v", r, err)
	}
	if r.PID != cmd.Process.Pid || len(r.InFlight) != 1 || r.InFlight[0].Ref.Name != obj("b") || r.InFlight[0].Op != "create" || len(r.Queued) != 0 {
		t.Errorf("recovery = %+v", r)
	}
	if strings.Join(r.Done, ",") != "create a" {
		t.Errorf("done = %v, want [create a]", r.Done)
	}
}
