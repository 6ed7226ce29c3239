package executor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/memdriver"
	"github.com/berth-dev/berth/manifest"
	"github.com/berth-dev/berth/planner"
)

const testStack = "demo"

// memCaps is how the tests' memdriver prices field changes.
var memCaps = drivers.Capabilities{
	Default: drivers.InPlace,
	Fields:  map[string]drivers.ChangeKind{"image": drivers.Replace, "cpus": drivers.Restart, "memory": drivers.InPlace},
}

func newMem() *memdriver.Driver {
	d := memdriver.New("mem")
	d.SetCapabilities(memCaps)
	return d
}

// inst is a minimal instance on the memdriver backend; deps are started
// conditions unless written "name:healthy" or "name:completed".
func inst(name string, deps ...string) *manifest.Instance {
	i := &manifest.Instance{Name: name, Backend: "mem", Image: "busybox", Memory: 64 * manifest.MiB}
	for _, d := range deps {
		dn, cond, ok := strings.Cut(d, ":")
		if !ok {
			cond = manifest.ConditionStarted
		}
		if i.DependsOn == nil {
			i.DependsOn = map[string]manifest.Dependency{}
		}
		i.DependsOn[dn] = manifest.Dependency{Condition: cond}
	}
	return i
}

func mkStack(insts ...*manifest.Instance) *manifest.Stack {
	s := &manifest.Stack{Version: 1, Name: testStack, Instances: map[string]*manifest.Instance{}}
	for _, i := range insts {
		s.Instances[i.Name] = i
	}
	return s
}

// seed puts the object a previous `up` of in would have left.
func seed(d *memdriver.Driver, in *manifest.Instance, state drivers.State) {
	spec, hash := planner.CanonicalSpec(in)
	name := planner.ObjectName(testStack, in)
	d.Put(drivers.ObservedInstance{
		Ref:   drivers.ObjectRef{Backend: "mem", Name: name},
		Owner: &drivers.Ownership{Stack: testStack, Instance: in.Name, SpecHash: hash, Spec: spec},
		State: state,
		Live:  memdriver.LiveFields(drivers.Target{Instance: in}),
	})
}

func mkPlan(t testing.TB, st *manifest.Stack, d *memdriver.Driver, mode planner.Mode) *planner.Plan {
	t.Helper()
	obs, err := d.Observe(context.Background(), st.Name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := planner.Compute(planner.Input{Stack: st, Observed: obs, Mode: mode,
		Capabilities: map[string]drivers.Capabilities{"mem": d.Capabilities()}})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

func opts(st *manifest.Stack, d drivers.Driver, parallel int) Options {
	return Options{
		Stack:        st,
		Driver:       func(string, string) (drivers.Driver, error) { return d, nil },
		Parallel:     parallel,
		PollInterval: time.Millisecond,
	}
}

// call finds the first recorded call of op on the named object.
func call(t *testing.T, d *memdriver.Driver, op memdriver.Op, name string) memdriver.Call {
	t.Helper()
	for _, c := range d.Calls() {
		if c.Op == op && c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s %s call in %v", op, name, d.Calls())
	return memdriver.Call{}
}

func obj(name string) string { return testStack + "-" + name }

func TestOrderingUpAndDown(t *testing.T) {
	d := newMem()
	st := mkStack(inst("db"), inst("cache"), inst("api", "db", "cache"), inst("web", "api"), inst("worker", "db"))
	res, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), opts(st, d, 4))
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	if res.Created != 5 {
		t.Errorf("created %d, want 5", res.Created)
	}
	// Every dependent's create begins after its dependency's start ended.
	for _, in := range st.Instances {
		for dep := range in.DependsOn {
			started := call(t, d, memdriver.OpStart, obj(dep))
			created := call(t, d, memdriver.OpCreate, obj(in.Name))
			if created.Start.Before(started.End) {
				t.Errorf("create %s began before start %s ended", in.Name, dep)
			}
		}
	}
	for _, o := range d.Objects() {
		if o.State != drivers.StateRunning {
			t.Errorf("%s is %s after up, want running", o.Ref.Name, o.State)
		}
	}
	if p := mkPlan(t, st, d, planner.ModeUp); p.HasChanges() {
		t.Errorf("second plan after up has changes:\n%v", p.Nodes)
	}

	d.ResetCalls()
	res, err = Apply(context.Background(), mkPlan(t, st, d, planner.ModeDown), opts(st, d, 4))
	if err != nil {
		t.Fatalf("down: %v", err)
	}
	if res.Deleted != 5 || len(d.Objects()) != 0 {
		t.Errorf("down deleted %d, %d objects left", res.Deleted, len(d.Objects()))
	}
	// Reverse: a dependency is deleted only after its dependents are gone.
	for _, in := range st.Instances {
		for dep := range in.DependsOn {
			dependent := call(t, d, memdriver.OpDelete, obj(in.Name))
			dependency := call(t, d, memdriver.OpStop, obj(dep))
			if dependency.Start.Before(dependent.End) {
				t.Errorf("stop %s began before delete %s (its dependent) ended", dep, in.Name)
			}
		}
	}
}

func TestParallelismBound(t *testing.T) {
	for _, n := range []int{1, 3, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			d := newMem()
			d.SetLatency(memdriver.OpCreate, 5*time.Millisecond)
			var insts []*manifest.Instance
			for i := range 24 {
				insts = append(insts, inst(fmt.Sprintf("i%02d", i)))
			}
			st := mkStack(insts...)
			if _, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), opts(st, d, n)); err != nil {
				t.Fatal(err)
			}
			if hw := d.HighWater(); hw != n {
				t.Errorf("high-water mark of concurrent driver calls = %d, want exactly %d", hw, n)
			}
		})
	}
}

// Nodes waiting on a dependency must not hold slots: with Parallel 2, one
// slot is held by a create that blocks until the test releases it, ten
// nodes wait on it, and five independent nodes must still all finish
// through the other slot.
func TestWaitingNodesDoNotStarvePool(t *testing.T) {
	d := newMem()
	release := d.Block(memdriver.OpCreate, obj("slow"))
	insts := []*manifest.Instance{inst("slow")}
	for i := range 10 {
		insts = append(insts, inst(fmt.Sprintf("waiter%d", i), "slow"))
	}
	for i := range 5 {
		insts = append(insts, inst(fmt.Sprintf("free%d", i)))
	}
	st := mkStack(insts...)
	p := mkPlan(t, st, d, planner.ModeUp)
	done := make(chan error, 1)
	go func() { _, err := Apply(context.Background(), p, opts(st, d, 2)); done <- err }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		finished := 0
		for _, c := range d.Calls() {
			if c.Op == memdriver.OpStart && strings.HasPrefix(c.Name, obj("free")) && !c.End.IsZero() {
				finished++
			}
		}
		if finished == 5 {
			break
		}
		if time.Now().After(deadline) {
			release()
			t.Fatalf("independent nodes did not finish while 10 nodes waited on a blocked one: waiting nodes starve the pool (calls: %v)", d.Calls())
		}
		time.Sleep(time.Millisecond)
	}
	for _, c := range d.Calls() {
		if strings.HasPrefix(c.Name, obj("waiter")) {
			t.Errorf("%v ran before its dependency was created", c)
		}
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if hw := d.HighWater(); hw > 2 {
		t.Errorf("high-water mark %d exceeds Parallel 2", hw)
	}
	if n := len(d.Objects()); n != 16 {
		t.Errorf("%d objects, want 16", n)
	}
}

func healthy(in *manifest.Instance, test ...string) *manifest.Instance {
	in.Healthcheck = &manifest.Healthcheck{Test: test, Interval: manifest.Duration(time.Millisecond),
		Timeout: manifest.Duration(time.Second), Retries: 3}
	return in
}

func TestHealthGating(t *testing.T) {
	d := newMem()
	d.HealthyAfter(obj("db"), 2)
	st := mkStack(healthy(inst("db"), "CMD-SHELL", "pg_isready -q"), inst("web", "db:healthy"), inst("side", "db"))
	var mu sync.Mutex
	var healthEvents []string
	o := opts(st, d, 4)
	o.Events = func(e Event) {
		if e.Phase == PhaseHealthWait {
			mu.Lock()
			healthEvents = append(healthEvents, e.NodeID+": "+e.Detail)
			mu.Unlock()
		}
	}
	if _, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), o); err != nil {
		t.Fatal(err)
	}
	var probes []memdriver.Call
	for _, c := range d.Calls() {
		if c.Op == memdriver.OpExec {
			probes = append(probes, c)
		}
	}
	if len(probes) != 3 {
		t.Fatalf("%d probes, want 3 (2 unhealthy, then healthy; retries 3): %v", len(probes), probes)
	}
	if got := strings.Join(probes[0].Argv, " "); got != "/bin/sh -c pg_isready -q" {
		t.Errorf("CMD-SHELL probe argv = %q", got)
	}
	web := call(t, d, memdriver.OpCreate, obj("web"))
	if web.Start.Before(probes[2].End) {
		t.Error("web was created before db turned healthy")
	}
	if len(healthEvents) == 0 || !strings.Contains(strings.Join(healthEvents, "\n"), "db: healthy (probe 3)") {
		t.Errorf("health events: %q", healthEvents)
	}
}

func TestHealthArgv(t *testing.T) {
	for _, c := range []struct {
		test []string
		want string
	}{
		{[]string{"CMD", "curl", "-f", "http://x"}, "curl|-f|http://x"},
		{[]string{"CMD-SHELL", "exit 0"}, "/bin/sh|-c|exit 0"},
		{[]string{"NONE"}, ""},
		{nil, ""},
		{[]string{"curl -f x"}, "/bin/sh|-c|curl -f x"},
	} {
		if got := strings.Join(HealthArgv(&manifest.Healthcheck{Test: c.test}), "|"); got != c.want {
			t.Errorf("HealthArgv(%q) = %q, want %q", c.test, got, c.want)
		}
	}
	if HealthArgv(&manifest.Healthcheck{Test: []string{"CMD", "x"}, Disable: true}) != nil {
		t.Error("disabled healthcheck gave an argv")
	}
}

func TestNeverHealthyFailsAndRollsBack(t *testing.T) {
	d := newMem()
	d.NeverHealthy(obj("db"))
	st := mkStack(healthy(inst("db"), "CMD", "pg_isready"), inst("web", "db:healthy"), inst("other"))
	before := d.Snapshot()
	res, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), opts(st, d, 4))
	if err == nil {
		t.Fatal("apply succeeded with a never-healthy dependency")
	}
	if res.Failed != "db" || !strings.Contains(res.Cause.Error(), "unhealthy") {
		t.Errorf("Failed=%q Cause=%v, want db unhealthy", res.Failed, res.Cause)
	}
	if why := res.Skipped["web"]; why != "upstream failed: db" {
		t.Errorf("web skipped %q, want upstream failed: db", why)
	}
	if n := countOps(d, memdriver.OpExec); n != 3 {
		t.Errorf("%d probes, want 3 (retries)", n)
	}
	if after := d.Snapshot(); after != before {
		t.Errorf("live state after rollback:\n%s\nwant:\n%s", after, before)
	}
	if !res.RolledBack() {
		t.Errorf("rollback steps %v", res.Rollback)
	}
}

func TestHealthStartPeriod(t *testing.T) {
	d := newMem()
	d.HealthyAfter(obj("db"), 5)
	db := healthy(inst("db"), "CMD", "true")
	db.Healthcheck.Retries = 1
	db.Healthcheck.StartPeriod = manifest.Duration(time.Hour)
	st := mkStack(db, inst("web", "db:healthy"))
	if _, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), opts(st, d, 2)); err != nil {
		t.Fatalf("failures inside start_period counted: %v", err)
	}
	if n := countOps(d, memdriver.OpExec); n != 6 {
		t.Errorf("%d probes, want 6", n)
	}
}

func TestCompleted(t *testing.T) {
	for _, code := range []int{0, 3} {
		t.Run(fmt.Sprint("exit", code), func(t *testing.T) {
			d := newMem()
			d.OneShot(obj("migrate"), code, 3)
			st := mkStack(inst("db"), inst("migrate", "db"), inst("web", "migrate:completed"))
			before := d.Snapshot()
			res, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), opts(st, d, 4))
			if code == 0 {
				if err != nil {
					t.Fatal(err)
				}
				var exitedAt time.Time
				for _, c := range d.Calls() {
					if c.Op == memdriver.OpObserve {
						exitedAt = c.End
					}
				}
				if call(t, d, memdriver.OpCreate, obj("web")).Start.Before(exitedAt) {
					t.Error("web created before migrate was seen exited")
				}
				return
			}
			if err == nil || res.Failed != "migrate" || !strings.Contains(err.Error(), "exited with code 3") {
				t.Fatalf("err=%v Failed=%q, want migrate exited with code 3", err, res.Failed)
			}
			if countOpsOn(d, memdriver.OpCreate, obj("web")) != 0 {
				t.Error("web was created after its completed dependency failed")
			}
			if after := d.Snapshot(); after != before {
				t.Errorf("state after rollback:\n%s\nwant:\n%s", after, before)
			}
		})
	}
}

func countOps(d *memdriver.Driver, op memdriver.Op) int { return countOpsOn(d, op, "") }

func countOpsOn(d *memdriver.Driver, op memdriver.Op, name string) int {
	n := 0
	for _, c := range d.Calls() {
		if c.Op == op && (name == "" || c.Name == name) {
			n++
		}
	}
	return n
}

// twelve is a 12-instance stack and its live state before the apply, so
// that the plan holds every action kind: no-op, in-place update, restart
// update, replace, start, creates with dependencies (one gated on health)
// and the delete of an orphan.
func twelve(cbd bool) (*manifest.Stack, func() *memdriver.Driver) {
	a, b, c, dd, e := inst("a"), healthy(inst("b"), "CMD", "true"), inst("c"), inst("d"), inst("e")
	orphan := inst("orphan")
	newer := func(in *manifest.Instance, f func(*manifest.Instance)) *manifest.Instance {
		x := *in
		f(&x)
		return &x
	}
	st := mkStack(
		a,
		newer(b, func(i *manifest.Instance) { i.Memory = 128 * manifest.MiB }),
		newer(c, func(i *manifest.Instance) { i.CPUs = 2 }),
		newer(dd, func(i *manifest.Instance) { i.Image = "alpine" }),
		e,
		inst("f", "a", "b"), inst("g", "c", "b:healthy"), inst("h", "d"), inst("i", "e", "f"),
		inst("j", "g", "h"), inst("k", "i", "j"), inst("l", "k"),
	)
	return st, func() *memdriver.Driver {
		d := newMem()
		if cbd {
			caps := memCaps
			caps.CreateBeforeDestroy = true
			d.SetCapabilities(caps)
		}
		seed(d, a, drivers.StateRunning)
		seed(d, b, drivers.StateRunning)
		seed(d, c, drivers.StateRunning)
		seed(d, dd, drivers.StateRunning)
		seed(d, e, drivers.StateStopped)
		seed(d, orphan, drivers.StateRunning)
		d.Put(drivers.ObservedInstance{Ref: drivers.ObjectRef{Name: "someone-elses"}, State: drivers.StateRunning})
		return d
	}
}

// For a failure injected at every mutating driver call in turn, the live
// state after the failed apply equals the state before it.
func TestRollbackCompleteness(t *testing.T) {
	for _, cbd := range []bool{false, true} {
		t.Run(fmt.Sprintf("create-before-destroy=%t", cbd), func(t *testing.T) {
			st, fresh := twelve(cbd)
			d := fresh()
			p := mkPlan(t, st, d, planner.ModeUp)
			kinds := map[planner.Action]int{}
			for _, n := range p.Nodes {
				kinds[n.Action]++
			}
			for _, k := range []planner.Action{planner.NoOp, planner.Create, planner.Update, planner.Replace, planner.Start, planner.Delete} {
				if kinds[k] == 0 {
					t.Fatalf("plan has no %s node: %v", k, kinds)
				}
			}
			if _, err := Apply(context.Background(), p, opts(st, d, 4)); err != nil {
				t.Fatalf("clean apply: %v", err)
			}
			if p2 := mkPlan(t, st, d, planner.ModeUp); p2.HasChanges() {
				t.Fatalf("plan after a clean apply has changes")
			}
			total := len(d.MutatingCalls())
			if total < 20 {
				t.Fatalf("only %d mutating calls in a clean apply", total)
			}
			for k := 1; k <= total; k++ {
				d := fresh()
				before := d.Snapshot()
				p := mkPlan(t, st, d, planner.ModeUp)
				d.Fail(memdriver.Fault{Mutating: true, Nth: k})
				res, err := Apply(context.Background(), p, opts(st, d, 4))
				failed := d.MutatingCalls()[k-1]
				if err == nil {
					t.Errorf("failure at call %d (%v): apply succeeded", k, failed)
					continue
				}
				if res.Failed == "" || !errors.Is(res.Cause, memdriver.ErrInjected) {
					t.Errorf("failure at call %d: Failed=%q Cause=%v", k, res.Failed, res.Cause)
				}
				for _, s := range res.Rollback {
					if s.Err != nil {
						t.Errorf("failure at call %d: rollback step %v", k, s)
					}
				}
				if after := d.Snapshot(); after != before {
					t.Errorf("failure at call %d (%v), rollback %v:\nlive state after:\n%s\nwant:\n%s", k, failed, res.Rollback, after, before)
				}
			}
		})
	}
}

func TestNoRollbackLeavesWreck(t *testing.T) {
	d := newMem()
	st := mkStack(inst("a"), inst("b", "a"))
	d.FailOn(memdriver.OpStart, obj("b"))
	o := opts(st, d, 2)
	o.NoRollback = true
	res, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), o)
	if err == nil || !strings.Contains(err.Error(), "--no-rollback") {
		t.Fatalf("err = %v", err)
	}
	if len(res.Rollback) != 0 || len(d.Objects()) != 2 {
		t.Errorf("rollback %v, %d objects; want none and 2", res.Rollback, len(d.Objects()))
	}
}

func TestOrphanDeletionIsNotUndone(t *testing.T) {
	d := newMem()
	seed(d, inst("old1"), drivers.StateRunning)
	seed(d, inst("old2"), drivers.StateStopped)
	st := mkStack(inst("a"))
	p := mkPlan(t, st, d, planner.ModeUp)
	d.Fail(memdriver.Fault{Op: memdriver.OpDelete, Nth: 2})
	res, err := Apply(context.Background(), p, opts(st, d, 1))
	if err == nil {
		t.Fatal("apply succeeded")
	}
	deletes := []memdriver.Call{}
	for _, c := range d.Calls() {
		if c.Op == memdriver.OpDelete && c.Name != obj("a") {
			deletes = append(deletes, c)
		}
	}
	if len(deletes) != 2 || deletes[0].Err != nil || deletes[1].Err == nil {
		t.Fatalf("orphan deletes %v, want one done and one failed", deletes)
	}
	gone, kept := deletes[0].Name, deletes[1].Name
	// The orphans ran after everything else.
	if deletes[0].Start.Before(call(t, d, memdriver.OpStart, obj("a")).End) {
		t.Error("an orphan was removed before the rest of the apply finished")
	}
	var reported bool
	for _, s := range res.Rollback {
		if s.Op == "keep" && s.Ref.Name == gone {
			reported = true
		}
	}
	if !reported {
		t.Errorf("rollback does not report the deleted orphan %s: %v", gone, res.Rollback)
	}
	names := map[string]drivers.State{}
	for _, o := range d.Objects() {
		names[o.Ref.Name] = o.State
	}
	if _, ok := names[gone]; ok || len(names) != 1 {
		t.Errorf("objects after rollback: %v; want %s only (%s deleted, not recreated; a rolled back)", names, kept, gone)
	}
	if kept == obj("old1") && names[kept] != drivers.StateRunning {
		t.Errorf("old1 is %s after rollback, want running again", names[kept])
	}
}

func TestCancellationRollsBack(t *testing.T) {
	d := newMem()
	release := d.Block(memdriver.OpCreate, obj("c"))
	defer release()
	seed(d, inst("x"), drivers.StateStopped)
	st := mkStack(inst("a"), inst("b", "a"), inst("c", "a"), inst("d", "c"), inst("x"))
	before := d.Snapshot()
	p := mkPlan(t, st, d, planner.ModeUp)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var phases []string
	o := opts(st, d, 4)
	o.Events = func(e Event) {
		mu.Lock()
		phases = append(phases, e.NodeID+" "+e.Phase.String())
		mu.Unlock()
		if e.NodeID == "c" && e.Phase == PhaseRunning && e.Detail == "create "+obj("c") {
			cancel()
		}
	}
	res, err := Apply(ctx, p, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if res.Failed != "" {
		t.Errorf("Failed = %q after a cancel, want none", res.Failed)
	}
	if res.Skipped["d"] == "" || res.Skipped["c"] == "" {
		t.Errorf("skipped = %v, want c interrupted and d not run", res.Skipped)
	}
	if countOpsOn(d, memdriver.OpCreate, obj("d")) != 0 {
		t.Error("d was created after the cancel")
	}
	if after := d.Snapshot(); after != before {
		t.Errorf("state after cancel:\n%s\nwant:\n%s", after, before)
	}
	if len(res.Rollback) == 0 {
		t.Error("no rollback steps after a cancel")
	}
	if !strings.Contains(strings.Join(phases, ","), "a rolled-back") {
		t.Errorf("no rolled-back event for a: %v", phases)
	}
}

func TestPlanErrorsBeforeAnyCall(t *testing.T) {
	d := newMem()
	mk := func(nodes ...*planner.Node) *planner.Plan { return &planner.Plan{Stack: testStack, Nodes: nodes} }
	a := func(id string, deps ...string) *planner.Node {
		return &planner.Node{ID: id, Instance: id, Backend: "mem", Action: planner.Create, Desired: inst(id), DependsOn: deps,
			Owner: &drivers.Ownership{Stack: testStack, Instance: id}}
	}
	for _, c := range []struct {
		plan *planner.Plan
		drv  func(string, string) (drivers.Driver, error)
		want string
	}{
		{mk(a("x", "y"), a("y", "x")), nil, "cycle"},
		{mk(a("x", "nope")), nil, `unknown node "nope"`},
		{mk(a("x"), a("x")), nil, "two nodes"},
		{mk(a("x")), func(string, string) (drivers.Driver, error) { return nil, errors.New("no such backend") }, "no such backend"},
	} {
		o := opts(nil, d, 2)
		if c.drv != nil {
			o.Driver = c.drv
		}
		_, err := Apply(context.Background(), c.plan, o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
	if n := len(d.Calls()); n != 0 {
		t.Errorf("%d driver calls for invalid plans", n)
	}
}

func TestNoChangesMakesNoMutatingCall(t *testing.T) {
	d := newMem()
	st := mkStack(inst("a"), inst("b", "a"))
	if _, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), opts(st, d, 2)); err != nil {
		t.Fatal(err)
	}
	d.ResetCalls()
	res, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), opts(st, d, 2))
	if err != nil {
		t.Fatal(err)
	}
	if m := d.MutatingCalls(); len(m) != 0 {
		t.Errorf("no-change apply made mutating calls: %v", m)
	}
	if res.Created+res.Updated+res.Deleted+res.Started+res.Stopped+res.Replaced != 0 {
		t.Errorf("counts %+v", res)
	}
}

func TestReplaceOrder(t *testing.T) {
	for _, cbd := range []bool{false, true} {
		t.Run(fmt.Sprintf("create-before-destroy=%t", cbd), func(t *testing.T) {
			d := newMem()
			if cbd {
				caps := memCaps
				caps.CreateBeforeDestroy = true
				d.SetCapabilities(caps)
			}
			old := inst("web")
			seed(d, old, drivers.StateRunning)
			next := inst("web")
			next.Image = "alpine"
			st := mkStack(next)
			res, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), opts(st, d, 2))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range d.MutatingCalls() {
				got = append(got, string(c.Op))
			}
			want := "stop delete create start"
			if cbd {
				want = "create start stop delete"
			}
			if strings.Join(got, " ") != want || res.Replaced != 1 {
				t.Errorf("calls %v (replaced %d), want %s", got, res.Replaced, want)
			}
			objs := d.Objects()
			if len(objs) != 1 || objs[0].State != drivers.StateRunning || !strings.Contains(string(objs[0].Owner.Spec), "alpine") {
				t.Errorf("after replace: %+v", objs)
			}
		})
	}
}

func TestRestartUpdate(t *testing.T) {
	d := newMem()
	old := inst("web")
	seed(d, old, drivers.StateRunning)
	next := inst("web")
	next.CPUs = 2
	st := mkStack(next)
	if _, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), opts(st, d, 2)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range d.MutatingCalls() {
		got = append(got, string(c.Op))
	}
	if strings.Join(got, " ") != "update stop start" {
		t.Errorf("calls %v, want update stop start", got)
	}
	if o := d.Objects()[0]; string(o.Live["cpus"]) != "2" || o.State != drivers.StateRunning {
		t.Errorf("live cpus %s state %s", o.Live["cpus"], o.State)
	}
}

// A dependency that is already up (a no-op node) is still probed before
// a new dependent starts.
func TestHealthGateOnUnchangedDependency(t *testing.T) {
	d := newMem()
	db := healthy(inst("db"), "CMD", "pg_isready")
	seed(d, db, drivers.StateRunning)
	d.HealthyAfter(obj("db"), 1)
	st := mkStack(db, inst("web", "db:healthy"))
	p := mkPlan(t, st, d, planner.ModeUp)
	if n := p.Node("db"); n == nil || n.Action != planner.NoOp {
		t.Fatalf("db node %v, want no-op", n)
	}
	if _, err := Apply(context.Background(), p, opts(st, d, 2)); err != nil {
		t.Fatal(err)
	}
	if n := countOpsOn(d, memdriver.OpExec, obj("db")); n != 2 {
		t.Errorf("%d probes of the unchanged db, want 2", n)
	}
}

// noExec hides the memdriver's Execer.
type noExec struct{ drivers.Driver }

func TestHealthGateNeedsExecAndHealthcheck(t *testing.T) {
	for _, c := range []struct {
		name string
		db   *manifest.Instance
		drv  func(*memdriver.Driver) drivers.Driver
		want string
	}{
		{"no exec", healthy(inst("db"), "CMD", "true"), func(d *memdriver.Driver) drivers.Driver { return noExec{d} }, "cannot exec"},
		{"no healthcheck", inst("db"), func(d *memdriver.Driver) drivers.Driver { return d }, "has no healthcheck"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newMem()
			st := mkStack(c.db, inst("web", "db:healthy"))
			res, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), opts(st, c.drv(d), 2))
			if err == nil || res.Failed != "db" || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v (failed %q), want db failing with %q", err, res.Failed, c.want)
			}
			if len(d.Objects()) != 0 {
				t.Errorf("objects left after rollback: %v", d.Objects())
			}
		})
	}
}

// Objects that changed state between plan and apply: a delete of an
// object already gone and a stop of one that already exited succeed.
func TestVanishedAndExitedObjects(t *testing.T) {
	d := newMem()
	seed(d, inst("gone"), drivers.StateRunning)
	seed(d, inst("done"), drivers.StateRunning)
	st := mkStack(inst("gone"), inst("done"))
	p := mkPlan(t, st, d, planner.ModeDown)
	// Behind the plan's back: gone vanishes, done's Stop reports not running.
	for _, o := range d.Objects() {
		if o.Ref.Name == obj("gone") {
			if err := d.Delete(context.Background(), o.Ref); err != nil {
				t.Fatal(err)
			}
		}
	}
	d.Fail(memdriver.Fault{Op: memdriver.OpStop, Name: obj("done"), Err: drivers.ErrNotRunning})
	res, err := Apply(context.Background(), p, opts(st, d, 2))
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 2 || len(d.Objects()) != 0 {
		t.Errorf("deleted %d, left %v", res.Deleted, d.Objects())
	}
}

// Rollback walks the graph backwards: dependents are undone before their
// dependencies, and unrelated nodes are undone at the same time.
func TestRollbackOrderAndParallelism(t *testing.T) {
	d := newMem()
	insts := []*manifest.Instance{inst("a"), inst("b", "a"), inst("c", "b")}
	deps := []string{"c"}
	for i := range 4 {
		insts = append(insts, inst(fmt.Sprintf("i%d", i)))
		deps = append(deps, fmt.Sprintf("i%d", i))
	}
	insts = append(insts, inst("bad", deps...))
	st := mkStack(insts...)
	d.FailOn(memdriver.OpCreate, obj("bad"))
	release := d.Block(memdriver.OpStop, "")
	defer release()
	done := make(chan *Result, 1)
	go func() {
		res, _ := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), opts(st, d, 4))
		done <- res
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		inFlight := 0
		for _, c := range d.Calls() {
			if c.Op == memdriver.OpStop && c.End.IsZero() {
				inFlight++
			}
		}
		if inFlight >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollback never ran two undo steps at once: calls %v", d.Calls())
		}
		time.Sleep(time.Millisecond)
	}
	release()
	res := <-done
	if !res.RolledBack() || len(d.Objects()) != 0 {
		t.Fatalf("rollback %v, objects left %v", res.Rollback, d.Objects())
	}
	for _, pair := range [][2]string{{"c", "b"}, {"b", "a"}} {
		dependent := call(t, d, memdriver.OpDelete, obj(pair[0]))
		dependency := call(t, d, memdriver.OpStop, obj(pair[1]))
		if dependency.Start.Before(dependent.End) {
			t.Errorf("rollback stopped %s before %s (its dependent) was deleted", pair[1], pair[0])
		}
	}
}

// With create-before-destroy and a healthcheck, the old object is removed
// only once its successor is healthy; an unhealthy successor leaves the
// old object untouched.
func TestCreateBeforeDestroyWaitsForHealth(t *testing.T) {
	for _, ok := range []bool{true, false} {
		t.Run(fmt.Sprint("healthy=", ok), func(t *testing.T) {
			d := newMem()
			caps := memCaps
			caps.CreateBeforeDestroy = true
			d.SetCapabilities(caps)
			old := healthy(inst("web"), "CMD", "true")
			seed(d, old, drivers.StateRunning)
			next := healthy(inst("web"), "CMD", "true")
			next.Image = "alpine"
			if ok {
				d.HealthyAfter(obj("web"), 1)
			} else {
				d.NeverHealthy(obj("web"))
			}
			st := mkStack(next)
			before := d.Snapshot()
			res, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), opts(st, d, 2))
			var got []string
			for _, c := range d.Calls() {
				if c.Op != memdriver.OpObserve {
					got = append(got, string(c.Op))
				}
			}
			if ok {
				if err != nil || strings.Join(got, " ") != "create start exec exec stop delete" {
					t.Errorf("err %v, calls %v", err, got)
				}
				return
			}
			if err == nil || res.Failed != "web" {
				t.Fatalf("err %v, failed %q", err, res.Failed)
			}
			if strings.Join(got, " ") != "create start exec exec exec stop delete" {
				t.Errorf("calls %v: the old object must not be touched", got)
			}
			if after := d.Snapshot(); after != before {
				t.Errorf("after:\n%s\nwant:\n%s", after, before)
			}
		})
	}
}

// What a crash or --no-rollback leaves behind converges: for a failure at
// every mutating call of the 12-instance stack, left unrolled, the next
// plan and apply reach the stack file with no duplicates and no orphans.
func TestConvergesAfterPartialApply(t *testing.T) {
	st, fresh := twelve(false)
	d := fresh()
	if _, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), opts(st, d, 4)); err != nil {
		t.Fatal(err)
	}
	want := d.Snapshot()
	total := len(d.MutatingCalls())
	for k := 1; k <= total; k++ {
		d := fresh()
		d.Fail(memdriver.Fault{Mutating: true, Nth: k})
		o := opts(st, d, 4)
		o.NoRollback = true
		if _, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), o); err == nil {
			t.Fatalf("failure at call %d: apply succeeded", k)
		}
		d.ClearFaults()
		if _, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), opts(st, d, 4)); err != nil {
			t.Errorf("failure at call %d: the next up failed: %v", k, err)
			continue
		}
		if p := mkPlan(t, st, d, planner.ModeUp); p.HasChanges() {
			t.Errorf("failure at call %d: still changes after the next up", k)
		}
		if got := d.Snapshot(); got != want {
			t.Errorf("failure at call %d: converged state:\n%s\nwant:\n%s", k, got, want)
		}
	}
}
