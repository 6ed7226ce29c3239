package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/memdriver"
	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/manifest"
)

// demoStack is the stack most command tests use: db, then web after it.
const demoStack = `name: demo
instances:
  db:
    backend: lxc
    template: {type: busybox}
    memory: 256M
    healthcheck:
      test: ["CMD", "true"]
      interval: 1ms
      retries: 2
  web:
    backend: lxc
    template: {type: busybox}
    depends_on:
      db: {condition: started}
`

// cmdEnv is a stack file in a temporary directory with in-memory drivers
// (one per backend, kept across commands, as a real host keeps its objects).
type cmdEnv struct {
	t        testing.TB
	g        *globalOptions
	mu       sync.Mutex
	mem      map[string]*memdriver.Driver
	out, err bytes.Buffer
}

func newCmdEnv(t testing.TB, stack string) *cmdEnv {
	t.Helper()
	dir := t.TempDir()
	e := &cmdEnv{t: t, mem: map[string]*memdriver.Driver{},
		g: &globalOptions{File: filepath.Join(dir, "berth.yaml"), StateDir: filepath.Join(dir, "state")}}
	e.writeStack(stack)
	return e
}

func (e *cmdEnv) writeStack(stack string) {
	e.t.Helper()
	if err := os.WriteFile(e.g.File, []byte(stack), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// open is the driverOpener the tests inject.
func (e *cmdEnv) open(backend string, _ *manifest.Provider, _ *manifest.Stack) (drivers.Driver, error) {
	return e.driver(backend), nil
}

func (e *cmdEnv) driver(backend string) *memdriver.Driver {
	e.mu.Lock()
	defer e.mu.Unlock()
	d, ok := e.mem[backend]
	if !ok {
		d = memdriver.New(backend)
		e.mem[backend] = d
	}
	return d
}

func (e *cmdEnv) streams() streams {
	e.out.Reset()
	e.err.Reset()
	return streams{In: strings.NewReader(""), Out: &e.out, Err: &e.err}
}

func (e *cmdEnv) plan(mut func(*planOptions)) error {
	o := &planOptions{g: e.g, st: e.streams(), openDriver: e.open, now: func() time.Time { return t0 }}
	if mut != nil {
		mut(o)
	}
	return runPlan(context.Background(), o)
}

func (e *cmdEnv) up(mut func(*upOptions)) error {
	o := &upOptions{g: e.g, st: e.streams(), openDriver: e.open, applySettings: applySettings{Parallel: 4, Progress: progressPlain}}
	if mut != nil {
		mut(o)
	}
	return runUp(context.Background(), o)
}

func (e *cmdEnv) down(mut func(*downOptions)) error {
	o := &downOptions{g: e.g, st: e.streams(), openDriver: e.open, applySettings: applySettings{Parallel: 4, Progress: progressPlain}, Yes: true}
	if mut != nil {
		mut(o)
	}
	return runDown(context.Background(), o)
}

func (e *cmdEnv) ps(json bool) error {
	return runPs(context.Background(), &psOptions{g: e.g, st: e.streams(), openDriver: e.open, now: func() time.Time { return t0 }, JSON: json})
}

// mutating lists the state-changing calls of every driver, as "op name".
func (e *cmdEnv) mutating() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, d := range e.mem {
		for _, c := range d.MutatingCalls() {
			out = append(out, string(c.Op)+" "+c.Name)
		}
	}
	return out
}

func (e *cmdEnv) resetCalls() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, d := range e.mem {
		d.ResetCalls()
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var es exitStatus
	if errors.As(err, &es) {
		return es.code
	}
	return 1
}

func TestPlanOutputAndExitCodes(t *testing.T) {
	e := newCmdEnv(t, demoStack)
	if err := e.plan(nil); err != nil {
		t.Fatalf("plan: %v", err)
	}
	for _, want := range []string{"create", "db", "web"} {
		if !strings.Contains(e.out.String(), want) {
			t.Errorf("plan output lacks %q:\n%s", want, e.out.String())
		}
	}
	if strings.Contains(e.out.String(), "\x1b[") {
		t.Errorf("colour without a terminal:\n%q", e.out.String())
	}
	if err := e.plan(func(o *planOptions) { o.DetailedExitcode = true }); exitCode(err) != 2 || err.Error() != "" {
		t.Errorf("plan --detailed-exitcode with changes = %v (code %d), want silent exit 2", err, exitCode(err))
	}

	if err := e.plan(func(o *planOptions) { o.JSON = true }); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Stack string `json:"stack"`
		Nodes []struct {
			ID      string   `json:"id"`
			Actions []string `json:"actions"`
			Action  string   `json:"action"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(e.out.Bytes(), &doc); err != nil {
		t.Fatalf("plan --json is not JSON: %v\n%s", err, e.out.String())
	}
	if doc.Stack != "demo" || len(doc.Nodes) != 2 {
		t.Errorf("plan --json = %+v, want stack demo with 2 nodes", doc)
	}
	if got := e.mutating(); len(got) != 0 {
		t.Errorf("plan made mutating calls: %v", got)
	}

	if err := e.up(func(o *upOptions) { o.Yes = true }); err != nil {
		t.Fatalf("up: %v\n%s", err, e.err.String())
	}
	if err := e.plan(func(o *planOptions) { o.DetailedExitcode = true }); err != nil {
		t.Errorf("plan --detailed-exitcode without changes = %v, want exit 0", err)
	}
	if !strings.Contains(e.out.String(), "No changes.") {
		t.Errorf("plan without changes says:\n%s", e.out.String())
	}

	e.writeStack("name: demo\ninstances: [\n")
	if err := e.plan(func(o *planOptions) { o.DetailedExitcode = true }); exitCode(err) != 1 {
		t.Errorf("plan of a broken stack = %v (code %d), want exit 1", err, exitCode(err))
	}
}

func TestUpCreatesThenSecondUpIsNoOp(t *testing.T) {
	e := newCmdEnv(t, demoStack)
	if err := e.up(nil); err != nil {
		t.Fatalf("up: %v\n%s", err, e.err.String())
	}
	out := e.out.String()
	if !strings.Contains(out, "Done in ") || !strings.Contains(out, "2 created") {
		t.Errorf("up summary missing:\n%s", out)
	}
	if !strings.Contains(out, " web create done") || !strings.Contains(out, " db create running") {
		t.Errorf("plain progress lines missing:\n%s", out)
	}
	objs := e.driver("lxc").Objects()
	if len(objs) != 2 {
		t.Fatalf("live objects after up: %d, want 2", len(objs))
	}
	for _, o := range objs {
		if o.State != drivers.StateRunning || o.Owner == nil || o.Owner.Stack != "demo" {
			t.Errorf("object %s: state %s owner %+v, want running and owned by demo", o.Ref.Name, o.State, o.Owner)
		}
	}

	e.resetCalls()
	if err := e.up(nil); err != nil {
		t.Fatalf("second up: %v", err)
	}
	if !strings.Contains(e.out.String(), "No changes.") {
		t.Errorf("second up says:\n%s", e.out.String())
	}
	if got := e.mutating(); len(got) != 0 {
		t.Errorf("second up made mutating calls: %v", got)
	}
	if n := len(e.driver("lxc").Calls()); n != 1 {
		t.Errorf("second up made %d driver calls, want exactly one Observe: %v", n, e.driver("lxc").Calls())
	}
}

func TestSavedPlanAppliedAndStalePlanRefused(t *testing.T) {
	e := newCmdEnv(t, demoStack)
	planFile := filepath.Join(t.TempDir(), "demo.plan")
	if err := e.plan(func(o *planOptions) { o.Out = planFile }); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.out.String(), "berth up "+planFile) {
		t.Errorf("plan --out does not say how to apply:\n%s", e.out.String())
	}
	if err := e.up(func(o *upOptions) { o.PlanFile = planFile }); err != nil {
		t.Fatalf("up PLANFILE: %v\n%s", err, e.err.String())
	}
	if n := len(e.driver("lxc").Objects()); n != 2 {
		t.Fatalf("saved plan applied %d objects, want 2", n)
	}

	// upStale applies the saved plan and checks that it is refused (exit
	// 1, an error holding each of want) without a mutating call.
	upStale := func(why string, want ...string) {
		t.Helper()
		e.resetCalls()
		err := e.up(func(o *upOptions) { o.PlanFile = planFile })
		for _, w := range want {
			if exitCode(err) != 1 || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: up PLANFILE = %v, want a stale-plan error with %q", why, err, w)
			}
		}
		if got := e.mutating(); len(got) != 0 {
			t.Errorf("%s: stale plan made mutating calls: %v", why, got)
		}
	}

	upStale("the same plan again (it was applied)", "is stale: the live state changed")

	// Live state changed outside berth after the plan was saved.
	if err := e.plan(func(o *planOptions) { o.Out = planFile }); err != nil {
		t.Fatal(err)
	}
	db := e.driver("lxc").Objects()[0]
	if err := e.driver("lxc").Stop(context.Background(), db.Ref, 0); err != nil {
		t.Fatal(err)
	}
	upStale("plan made before a stop outside berth", "the live state changed")

	// The stack file changed after the plan was saved.
	if err := e.plan(func(o *planOptions) { o.Out = planFile }); err != nil {
		t.Fatal(err)
	}
	e.writeStack(strings.Replace(demoStack, "256M", "512M", 1))
	upStale("plan made before a stack edit", "stack file", "changed")

	if err := os.WriteFile(planFile, []byte(`{"nodes": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.up(func(o *upOptions) { o.PlanFile = planFile }); err == nil || !strings.Contains(err.Error(), "not a saved berth plan") {
		t.Errorf("up of a non-plan file = %v", err)
	}
}

func TestUpFailureRollsBackAndReports(t *testing.T) {
	e := newCmdEnv(t, demoStack)
	e.driver("lxc").FailOn(memdriver.OpCreate, "demo-web")
	err := e.up(nil)
	if exitCode(err) != 1 {
		t.Fatalf("failed up = %v (code %d), want exit 1", err, exitCode(err))
	}
	if !strings.Contains(err.Error(), "web") || !strings.Contains(err.Error(), "injected failure") {
		t.Errorf("error %q does not name the failed action and cause", err)
	}
	report := e.err.String()
	for _, want := range []string{"Failed: web", "Cause: ", "injected failure", "Rollback:", "delete demo-db"} {
		if !strings.Contains(report, want) {
			t.Errorf("failure report lacks %q:\n%s", want, report)
		}
	}
	if objs := e.driver("lxc").Objects(); len(objs) != 0 {
		t.Errorf("objects left after rollback: %v", objs)
	}

	e.driver("lxc").ClearFaults()
	e.driver("lxc").FailOn(memdriver.OpCreate, "demo-web")
	err = e.up(func(o *upOptions) { o.NoRollback = true })
	if exitCode(err) != 1 || !strings.Contains(e.err.String(), "--no-rollback") {
		t.Errorf("--no-rollback failure = %v\n%s", err, e.err.String())
	}
	if objs := e.driver("lxc").Objects(); len(objs) != 1 || objs[0].Ref.Name != "demo-db" {
		t.Errorf("--no-rollback should leave demo-db: %v", objs)
	}
}

func TestDownDeletesInReverseOrder(t *testing.T) {
	e := newCmdEnv(t, demoStack)
	if err := e.down(nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.out.String(), "owns no objects") {
		t.Errorf("down of an empty stack says:\n%s", e.out.String())
	}
	if err := e.up(nil); err != nil {
		t.Fatal(err)
	}
	// A foreign object with a similar name is never touched.
	e.driver("lxc").Put(drivers.ObservedInstance{Ref: drivers.ObjectRef{Name: "demo-other"}, State: drivers.StateRunning})
	e.resetCalls()
	if err := e.down(nil); err != nil {
		t.Fatalf("down: %v\n%s", err, e.err.String())
	}
	if !strings.Contains(e.out.String(), "2 deleted") {
		t.Errorf("down summary:\n%s", e.out.String())
	}
	objs := e.driver("lxc").Objects()
	if len(objs) != 1 || objs[0].Ref.Name != "demo-other" {
		t.Errorf("after down: %v, want only the foreign object", objs)
	}
	var order []string
	for _, c := range e.driver("lxc").MutatingCalls() {
		if c.Op == memdriver.OpDelete {
			order = append(order, c.Name)
		}
	}
	if strings.Join(order, ",") != "demo-web,demo-db" {
		t.Errorf("delete order %v, want web before db", order)
	}
}

func TestPsJSONWithHealthAndOrphans(t *testing.T) {
	threeStack := demoStack + "  cache:\n    backend: lxc\n    template: {type: busybox}\n"
	e := newCmdEnv(t, threeStack)
	if err := e.up(nil); err != nil {
		t.Fatal(err)
	}
	e.writeStack(demoStack) // cache is now an orphan
	e.driver("lxc").NeverHealthy("demo-db")
	if err := e.ps(true); err != nil {
		t.Fatal(err)
	}
	var rows []psRow
	if err := json.Unmarshal(e.out.Bytes(), &rows); err != nil {
		t.Fatalf("ps --json: %v\n%s", err, e.out.String())
	}
	got := map[string]psRow{}
	for _, r := range rows {
		got[r.Instance] = r
	}
	if len(rows) != 3 {
		t.Fatalf("ps rows: %+v", rows)
	}
	if r := got["db"]; r.Health != "unhealthy" || r.State != drivers.StateRunning || r.Name != "demo-db" || r.Backend != "lxc" || r.Orphan {
		t.Errorf("db row = %+v", r)
	}
	if r := got["web"]; r.Health != "" || r.Orphan {
		t.Errorf("web row (no healthcheck) = %+v", r)
	}
	if r := got["cache"]; !r.Orphan {
		t.Errorf("cache row not marked orphan: %+v", r)
	}
	if rows[2].Instance != "cache" {
		t.Errorf("orphans should come last: %+v", rows)
	}

	e.driver("lxc").HealthyAfter("demo-db", 0)
	if err := e.ps(false); err != nil {
		t.Fatal(err)
	}
	table := e.out.String()
	for _, want := range []string{"INSTANCE", "HEALTH", "cache (orphan)", "healthy"} {
		if !strings.Contains(table, want) {
			t.Errorf("ps table lacks %q:\n%s", want, table)
		}
	}
}

func TestLockContention(t *testing.T) {
	e := newCmdEnv(t, demoStack)
	lock, err := executor.LockStack(e.g.StateDir, "demo")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	err = e.up(nil)
	if !errors.Is(err, drivers.ErrLocked) || !strings.Contains(err.Error(), "pid") {
		t.Errorf("up while locked = %v, want a lock error naming the holder's pid", err)
	}
	if err := e.down(nil); !errors.Is(err, drivers.ErrLocked) {
		t.Errorf("down while locked = %v", err)
	}
	if got := e.mutating(); len(got) != 0 {
		t.Errorf("locked up made mutating calls: %v", got)
	}
}

func TestGraphDOT(t *testing.T) {
	e := newCmdEnv(t, demoStack)
	o := &graphOptions{g: e.g, st: e.streams(), openDriver: e.open}
	if err := runGraph(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	dot := e.out.String()
	if !strings.HasPrefix(dot, "digraph") || !strings.Contains(dot, "web") || !strings.Contains(dot, "db") {
		t.Errorf("graph output:\n%s", dot)
	}
}

func TestExecPassesExitCodeAndLogs(t *testing.T) {
	e := newCmdEnv(t, demoStack)
	if err := e.up(nil); err != nil {
		t.Fatal(err)
	}
	run := func(argv ...string) error {
		return runExec(context.Background(), &execOptions{g: e.g, st: e.streams(), openDriver: e.open, Instance: "web", Argv: argv})
	}
	if err := run("echo", "hi"); err != nil || e.out.String() != "hi\n" {
		t.Errorf("exec echo = %v, output %q", err, e.out.String())
	}
	if err := run("sh", "-c", "exit 3"); exitCode(err) != 3 || err.Error() != "" {
		t.Errorf("exec exit 3 = %v (code %d), want a silent exit 3", err, exitCode(err))
	}
	err := runExec(context.Background(), &execOptions{g: e.g, st: e.streams(), openDriver: e.open, Instance: "nope", Argv: []string{"true"}})
	if err == nil || !strings.Contains(err.Error(), `no instance "nope"`) {
		t.Errorf("exec in an unknown instance = %v", err)
	}

	if err := e.driver("lxc").AppendLog("demo-web", "hello from web\n"); err != nil {
		t.Fatal(err)
	}
	lo := &logsOptions{g: e.g, st: e.streams(), openDriver: e.open, Instances: []string{"web"}}
	if err := runLogs(context.Background(), lo); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.out.String(), "hello from web\n") || strings.Contains(e.out.String(), "web |") {
		t.Errorf("logs web output: %q", e.out.String())
	}
	if err := e.driver("lxc").AppendLog("demo-db", "db line one\ndb line two"); err != nil {
		t.Fatal(err)
	}
	e.resetCalls()
	lo = &logsOptions{g: e.g, st: e.streams(), openDriver: e.open}
	if err := runLogs(context.Background(), lo); err != nil {
		t.Fatal(err)
	}
	all := e.out.String()
	for _, want := range []string{"db  | db line one\n", "db  | db line two\n", "web | hello from web\n"} {
		if !strings.Contains(all, want) {
			t.Errorf("logs of every instance lacks %q:\n%s", want, all)
		}
	}
	observes := 0
	for _, c := range e.driver("lxc").Calls() {
		if c.Op == memdriver.OpObserve {
			observes++
		}
	}
	if observes != 1 {
		t.Errorf("logs of every instance observed %d times, want once", observes)
	}
}

func TestUpWait(t *testing.T) {
	e := newCmdEnv(t, demoStack)
	e.driver("lxc").HealthyAfter("demo-db", 1)
	if err := e.up(func(o *upOptions) { o.Wait = true }); err != nil {
		t.Fatalf("up --wait: %v\n%s", err, e.err.String())
	}
	if !strings.Contains(e.out.String(), "All health checks pass") {
		t.Errorf("up --wait output:\n%s", e.out.String())
	}
	e.driver("lxc").NeverHealthy("demo-db")
	err := e.up(func(o *upOptions) { o.Wait = true })
	if err == nil || !strings.Contains(err.Error(), "db: unhealthy after 2 checks") {
		t.Errorf("up --wait with a failing check = %v", err)
	}
}

func TestUpConfirmsDestructivePlansOnATerminal(t *testing.T) {
	e := newCmdEnv(t, demoStack+"  cache:\n    backend: lxc\n    template: {type: busybox}\n")
	if err := e.up(nil); err != nil {
		t.Fatal(err)
	}
	e.writeStack(demoStack) // deletes cache
	e.resetCalls()
	err := e.up(func(o *upOptions) { o.st.InTTY = true; o.st.In = strings.NewReader("n\n") })
	if err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Errorf("declined up = %v", err)
	}
	if !strings.Contains(e.out.String(), "[y/N]") {
		t.Errorf("no question asked:\n%s", e.out.String())
	}
	if got := e.mutating(); len(got) != 0 {
		t.Errorf("declined up made mutating calls: %v", got)
	}
	if err := e.up(func(o *upOptions) { o.st.InTTY = true; o.st.In = strings.NewReader("yes\n") }); err != nil {
		t.Fatal(err)
	}
	if n := len(e.driver("lxc").Objects()); n != 2 {
		t.Errorf("objects after confirmed delete: %d, want 2", n)
	}
}

func TestUpJSONProgressKeepsStdoutJSON(t *testing.T) {
	e := newCmdEnv(t, demoStack)
	if err := e.up(func(o *upOptions) { o.Progress = progressJSON }); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(e.out.String()), "\n")
	for _, l := range lines {
		var ev progressEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Errorf("stdout line is not a JSON event: %q", l)
		}
	}
	if len(lines) < 4 {
		t.Errorf("only %d events:\n%s", len(lines), e.out.String())
	}
	if !strings.Contains(e.err.String(), "2 created") || !strings.Contains(e.err.String(), "create") {
		t.Errorf("plan view and summary should go to stderr:\n%s", e.err.String())
	}
}

func TestUpCancelledRollsBack(t *testing.T) {
	e := newCmdEnv(t, demoStack)
	release := e.driver("lxc").Block(memdriver.OpCreate, "demo-web")
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := &upOptions{g: e.g, st: e.streams(), openDriver: e.open, applySettings: applySettings{Parallel: 4, Progress: progressPlain}}
	done := make(chan error, 1)
	go func() { done <- runUp(ctx, o) }()
	// Wait (by state, not time) until web's create is in flight, then
	// cancel as the first Ctrl-C does.
	for !inFlight(e.driver("lxc"), memdriver.OpCreate, "demo-web") {
		time.Sleep(time.Millisecond) // polling, not a timed assertion
	}
	cancel()
	err := <-done
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("cancelled up = %v", err)
	}
	if !strings.Contains(e.err.String(), "Interrupted.") || !strings.Contains(e.err.String(), "delete demo-db") {
		t.Errorf("cancel report:\n%s", e.err.String())
	}
	if objs := e.driver("lxc").Objects(); len(objs) != 0 {
		t.Errorf("objects left after a cancelled up: %v", objs)
	}
}

func inFlight(d *memdriver.Driver, op memdriver.Op, name string) bool {
	for _, c := range d.Calls() {
		if c.Op == op && c.Name == name && c.End.IsZero() {
			return true
		}
	}
	return false
}

func TestUpReportsCrashedRun(t *testing.T) {
	e := newCmdEnv(t, demoStack)
	if err := os.MkdirAll(e.g.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	journal := `{"time":"2026-11-27T01:00:00Z","type":"begin","stack":"demo","pid":4242,"host":"box"}
{"time":"2026-11-27T01:00:01Z","type":"op-start","node":"web","op":"create","ref":{"backend":"lxc","name":"demo-web"}}
`
	if err := os.WriteFile(filepath.Join(e.g.StateDir, "demo.journal"), []byte(journal), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.up(nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pid 4242", "did not finish", "in flight: create demo-web"} {
		if !strings.Contains(e.err.String(), want) {
			t.Errorf("crash report lacks %q:\n%s", want, e.err.String())
		}
	}
	if err := e.up(nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.err.String(), "did not finish") {
		t.Errorf("a finished apply is reported as crashed:\n%s", e.err.String())
	}
}

func TestOrphanOnABackendTheFileNoLongerUses(t *testing.T) {
	e := newCmdEnv(t, demoStack+"  cache:\n    backend: crun\n    image: ./img\n")
	if err := e.up(nil); err != nil {
		t.Fatalf("up: %v\n%s", err, e.err.String())
	}
	if n := len(e.driver("crun").Objects()); n != 1 {
		t.Fatalf("crun objects: %d, want 1", n)
	}
	e.writeStack(demoStack) // no crun instance left
	if err := e.plan(nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.out.String(), "delete cache") {
		t.Errorf("plan does not delete the crun orphan:\n%s", e.out.String())
	}
	if err := e.up(nil); err != nil {
		t.Fatal(err)
	}
	if objs := e.driver("crun").Objects(); len(objs) != 0 {
		t.Errorf("crun orphan survived up: %v", objs)
	}
	if err := e.down(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(recordedKeysPath(e.g.StateDir, "demo")); !os.IsNotExist(err) {
		t.Errorf("backend record kept after down: %v", err)
	}
}

func TestDownWithoutStackFile(t *testing.T) {
	e := newCmdEnv(t, demoStack)
	if err := e.up(nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(e.g.File); err != nil {
		t.Fatal(err)
	}
	if err := e.down(nil); err == nil {
		t.Error("down without a file and without -p succeeded")
	}
	e.g.ProjectName = "demo"
	if err := e.down(nil); err != nil {
		t.Fatalf("-p demo down without a file: %v\n%s", err, e.err.String())
	}
	if objs := e.driver("lxc").Objects(); len(objs) != 0 {
		t.Errorf("objects left: %v", objs)
	}
	if !strings.Contains(e.err.String(), "no stack file") {
		t.Errorf("no warning about the missing file:\n%s", e.err.String())
	}
}

func TestUpWaitTimeout(t *testing.T) {
	e := newCmdEnv(t, strings.Replace(demoStack, "interval: 1ms", "interval: 1h", 1))
	e.driver("lxc").NeverHealthy("demo-db")
	// --wait-timeout implies --wait; the first probe fails and the next
	// would come an hour later, so only the timeout can end the wait.
	err := e.up(func(o *upOptions) { o.WaitTimeout = 20 * time.Millisecond; o.Yes = true })
	if err == nil || !strings.Contains(err.Error(), "--wait-timeout 20ms expired") || !strings.Contains(err.Error(), "db:") {
		t.Errorf("up --wait-timeout = %v", err)
	}
	if err := e.up(func(o *upOptions) { o.WaitTimeout = -time.Second }); err == nil {
		t.Error("negative --wait-timeout accepted")
	}
}
