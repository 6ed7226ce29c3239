// Package executor applies a plan: one goroutine per node waits for its
// dependencies (and their health gates), then performs the node's driver
// calls, each holding one of Parallel slots only while the call runs, so
// nodes that wait never starve the pool. On the first failure (or ctx
// cancellation) it stops launching work, lets in-flight calls finish, and
// rolls back every completed driver call in reverse order. The per-stack
// lock and the apply journal that make crashes recoverable live here too.
// See docs/executor.md.
package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/manifest"
	"github.com/berth-dev/berth/planner"
)

// DefaultParallel is the number of concurrent driver calls when
// Options.Parallel is 0 (the CLI's --parallel default).
const DefaultParallel = 8

// DefaultStopTimeout is how long a stop waits before killing when the
// instance sets no stop_grace_period: the stack file's default.
const DefaultStopTimeout = manifest.DefaultStopGracePeriod

// Options configure one Apply.
type Options struct {
	// Stack is the loaded stack file (providers and the stack dir for
	// driver targets, healthchecks of dependencies). May be nil for a
	// plan that creates nothing (down of a stack whose file is gone).
	Stack *manifest.Stack
	// Driver returns the driver of a backend/provider pair; Apply calls
	// it once per pair, before any driver call.
	Driver func(backend, provider string) (drivers.Driver, error)
	// Parallel bounds concurrent driver calls (default DefaultParallel).
	Parallel int
	// NoRollback leaves the partial state of a failed apply in place.
	NoRollback bool
	// Events receives progress; calls are serialized.
	Events func(Event)
	// Journal records the apply for crash recovery; nil for none.
	Journal *Journal
	// PollInterval is how often a `completed` gate observes a one-shot
	// instance (default 250ms).
	PollInterval time.Duration
}

// Phase is a node's progress step reported in an Event.
type Phase int

// Phases in the order a node goes through them.
const (
	PhaseWaiting     Phase = iota // waiting for dependencies
	PhaseRunning                  // driver calls in progress
	PhaseHealthWait               // waiting for its health check / one-shot exit
	PhaseDone                     // finished
	PhaseFailed                   // failed; Err says why
	PhaseSkipped                  // not run: upstream failed, apply aborted or cancelled
	PhaseRollingBack              // a rollback step is running
	PhaseRolledBack               // a rollback step finished (Err set if it failed)
)

var phaseNames = [...]string{"waiting", "running", "health-wait", "done", "failed", "skipped", "rolling-back", "rolled-back"}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", int(p))
}

// MarshalText renders the phase name (JSON progress output).
func (p Phase) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Event is one progress report about one node.
type Event struct {
	Time     time.Time
	NodeID   string
	Instance string
	Action   planner.Action
	Phase    Phase
	Err      error
	// Detail says what happens in the phase ("create demo-web",
	// "probe 2: exit 1", "upstream failed: db").
	Detail string
}

// RollbackStep is one undo driver call run after a failure.
type RollbackStep struct {
	NodeID   string
	Instance string
	// Op is the driver call: delete, stop, start, update, create; or
	// "keep" for something deliberately not undone (a deleted orphan).
	Op     string
	Ref    drivers.ObjectRef
	Detail string
	Err    error
}

func (s RollbackStep) String() string {
	msg := fmt.Sprintf("%s %s", s.Op, s.Ref.Name)
	if s.Detail != "" {
		msg += ": " + s.Detail
	}
	if s.Err != nil {
		msg += " (FAILED: " + s.Err.Error() + ")"
	}
	return msg
}

// Result reports one Apply. It is returned even when Apply fails.
type Result struct {
	// Failed is the ID of the node whose action failed first ("" when
	// nothing failed, or the apply was only cancelled).
	Failed string
	// Cause is the first failure's error, or the ctx error when the
	// apply was cancelled.
	Cause error
	// Rollback lists every undo step in the order run.
	Rollback []RollbackStep
	// Skipped lists nodes that never ran, with why ("upstream failed: db").
	Skipped map[string]string
	// Counts of nodes that completed, by action (before any rollback).
	Created, Updated, Replaced, Deleted, Started, Stopped int
	Wall                                                  time.Duration
}

// RolledBack reports whether a rollback ran and every step succeeded.
func (r *Result) RolledBack() bool {
	if len(r.Rollback) == 0 {
		return false
	}
	for _, s := range r.Rollback {
		if s.Err != nil {
			return false
		}
	}
	return true
}

// errAborted stops a node between driver calls once the apply failed.
var errAborted = errors.New("apply aborted")

// nodeStatus is the outcome of one node.
type nodeStatus int

const (
	statusPending nodeStatus = iota
	statusOK
	statusFailed
	statusSkipped
)

type gateKind int

const (
	gateNone gateKind = iota
	gateHealthy
	gateCompleted
)

// rnode is a plan node at run time.
type rnode struct {
	*planner.Node
	deps   []*rnode
	done   chan struct{}
	status nodeStatus
	drv    drivers.Driver
	gate   gateKind
	// orphan: an orphan delete deferred until every other node is done.
	orphan bool
	// ref is the object the node leaves behind (for health gates).
	ref drivers.ObjectRef
}

// applier is the state of one Apply.
type applier struct {
	o     Options
	plan  *planner.Plan
	sem   chan struct{}
	ahead chan struct{} // the announce window of journaled creates/deletes, see call
	nodes []*rnode

	mu       sync.Mutex
	aborted  bool
	abortCh  chan struct{} // closed when aborted becomes true
	res      *Result
	undo     []*undoEntry
	eventsMu sync.Mutex
}

// Apply performs the plan. It returns a non-nil Result even on error; the
// error names the failed node and the cause and says whether the rollback
// succeeded.
func Apply(ctx context.Context, p *planner.Plan, o Options) (*Result, error) {
	start := time.Now()
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	a := &applier{o: o, plan: p, sem: make(chan struct{}, o.Parallel), ahead: make(chan struct{}, o.Parallel), res: &Result{Skipped: map[string]string{}}, abortCh: make(chan struct{})}
	if err := a.prepare(); err != nil {
		a.res.Wall = time.Since(start)
		return a.res, fmt.Errorf("executor: %w", err)
	}
	if err := o.Journal.begin(p); err != nil {
		a.res.Wall = time.Since(start)
		return a.res, fmt.Errorf("executor: %w", err)
	}

	var g errgroup.Group
	for _, n := range a.nodes {
		g.Go(func() error { a.runNode(ctx, n); return nil })
	}
	_ = g.Wait()

	if a.res.Cause == nil && ctx.Err() != nil && a.anySkipped() {
		a.res.Cause = context.Cause(ctx)
	}
	var err error
	if a.res.Cause != nil {
		if !o.NoRollback {
			a.rollback(context.WithoutCancel(ctx))
		}
		err = a.failure()
	}
	outcome := "applied"
	switch {
	case err != nil && o.NoRollback:
		outcome = "failed"
	case err != nil:
		outcome = "rolled-back"
	}
	if jerr := o.Journal.end(outcome, a.res); jerr != nil && err == nil {
		err = fmt.Errorf("executor: %w", jerr)
	}
	a.res.Wall = time.Since(start)
	return a.res, err
}

func (a *applier) anySkipped() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.res.Skipped) > 0
}

// failure builds Apply's error from the result.
func (a *applier) failure() error {
	r := a.res
	var b strings.Builder
	if r.Failed != "" {
		fmt.Fprintf(&b, "%s failed: %v", r.Failed, r.Cause)
	} else {
		fmt.Fprintf(&b, "apply cancelled: %v", r.Cause)
	}
	switch {
	case a.o.NoRollback:
		b.WriteString("; --no-rollback: partial state left in place")
	case len(r.Rollback) == 0:
		b.WriteString("; nothing to roll back")
	default:
		var failed []string
		for _, s := range r.Rollback {
			if s.Err != nil {
				failed = append(failed, s.String())
			}
		}
		if len(failed) == 0 {
			fmt.Fprintf(&b, "; rolled back (%d steps)", len(r.Rollback))
		} else {
			fmt.Fprintf(&b, "; ROLLBACK INCOMPLETE (%d of %d steps failed: %s)", len(failed), len(r.Rollback), strings.Join(failed, "; "))
		}
	}
	return &ApplyError{Node: r.Failed, Cause: r.Cause, msg: b.String()}
}

// ApplyError is the error of a failed or cancelled Apply; it unwraps to
// the cause (so errors.Is(err, context.Canceled) works).
type ApplyError struct {
	Node  string
	Cause error
	msg   string
}

func (e *ApplyError) Error() string { return e.msg }
func (e *ApplyError) Unwrap() error { return e.Cause }

// prepare checks the graph, resolves drivers and computes health gates.
func (a *applier) prepare() error {
	byID := map[string]*rnode{}
	for _, n := range a.plan.Nodes {
		if _, dup := byID[n.ID]; dup {
			return fmt.Errorf("plan has two nodes with ID %q", n.ID)
		}
		rn := &rnode{Node: n, done: make(chan struct{})}
		if n.Existing != nil {
			rn.ref = n.Existing.Ref
		}
		byID[n.ID] = rn
		a.nodes = append(a.nodes, rn)
	}
	for _, rn := range a.nodes {
		for _, d := range rn.DependsOn {
			dep, ok := byID[d]
			if !ok {
				return fmt.Errorf("node %s depends on unknown node %q", rn.ID, d)
			}
			rn.deps = append(rn.deps, dep)
		}
	}
	a.deferOrphans()
	if cyc := findCycle(a.nodes); cyc != "" {
		return fmt.Errorf("plan has a dependency cycle: %s", cyc)
	}
	type key struct{ backend, provider string }
	drvs := map[key]drivers.Driver{}
	for _, rn := range a.nodes {
		if rn.Action == planner.NoOp && !a.needsGate(rn) {
			continue
		}
		k := key{rn.Backend, rn.Provider}
		d, ok := drvs[k]
		if !ok {
			if a.o.Driver == nil {
				return errors.New("Options.Driver is nil")
			}
			var err error
			if d, err = a.o.Driver(rn.Backend, rn.Provider); err != nil {
				return fmt.Errorf("node %s: backend %s: %w", rn.ID, rn.Backend, err)
			}
			drvs[k] = d
		}
		rn.drv = d
	}
	for _, rn := range a.nodes {
		rn.gate = a.gateFor(rn)
	}
	return nil
}

// deferOrphans makes the deletes of orphans (objects the stack owns that
// the file no longer lists) in an `up` wait for every other node: an
// orphan is removed only once the rest of the apply succeeded, because its
// deletion is the one action a rollback does not undo.
func (a *applier) deferOrphans() {
	if a.plan.Mode != planner.ModeUp {
		return
	}
	hasDependents := map[*rnode]bool{}
	for _, n := range a.nodes {
		for _, d := range n.deps {
			hasDependents[d] = true
		}
	}
	var orphans, rest []*rnode
	for _, n := range a.nodes {
		if n.Action == planner.Delete && n.Desired == nil && !hasDependents[n] {
			orphans = append(orphans, n)
		} else {
			rest = append(rest, n)
		}
	}
	if len(orphans) == 0 {
		return
	}
	for _, o := range orphans {
		o.orphan = true
		for _, r := range rest {
			if !slices.Contains(o.deps, r) {
				o.deps = append(o.deps, r)
			}
		}
	}
}

// gateFor decides what the node's dependents wait for beyond its
// completion: its health check (`condition: healthy`) or its exit 0
// (`condition: completed`). Only dependents that start something wait.
func (a *applier) gateFor(n *rnode) gateKind {
	if n.Action == planner.Delete || n.Action == planner.Stop {
		return gateNone
	}
	g := gateNone
	for _, d := range a.nodes {
		if d.Desired == nil || !startsSomething(d.Node) {
			continue
		}
		dep, ok := d.Desired.DependsOn[n.Instance]
		if !ok || !slices.Contains(d.DependsOn, n.ID) {
			continue
		}
		switch dep.Condition {
		case manifest.ConditionCompleted:
			g = gateCompleted
		case manifest.ConditionHealthy:
			if g == gateNone {
				g = gateHealthy
			}
		}
	}
	return g
}

func (a *applier) needsGate(n *rnode) bool { return a.gateFor(n) != gateNone }

func startsSomething(n *planner.Node) bool {
	switch n.Action {
	case planner.Create, planner.Replace, planner.Start:
		return true
	case planner.Update:
		return n.Restart
	}
	return false
}

// findCycle returns "a -> b -> a" for a cycle, or "".
func findCycle(nodes []*rnode) string {
	const (
		white = iota
		grey
		black
	)
	color := map[*rnode]int{}
	var stack []*rnode
	var found string
	var visit func(n *rnode) bool
	visit = func(n *rnode) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, d := range n.deps {
			switch color[d] {
			case grey:
				var ids []string
				for i := len(stack) - 1; i >= 0; i-- {
					ids = append(ids, stack[i].ID)
					if stack[i] == d {
						break
					}
				}
				found = strings.Join(ids, " -> ") + " -> " + n.ID
				return true
			case white:
				if visit(d) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, n := range nodes {
		if color[n] == white && visit(n) {
			return found
		}
	}
	return ""
}

func (a *applier) emit(n *rnode, ph Phase, err error, detail string) {
	if a.o.Events == nil {
		return
	}
	a.eventsMu.Lock()
	defer a.eventsMu.Unlock()
	a.o.Events(Event{Time: time.Now(), NodeID: n.ID, Instance: n.Instance, Action: n.Action, Phase: ph, Err: err, Detail: detail})
}

// abortLocked stops new work; a.mu must be held.
func (a *applier) abortLocked() {
	if !a.aborted {
		a.aborted = true
		close(a.abortCh)
	}
}

func (a *applier) isAborted() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.aborted
}

// fail records a node failure. The first one wins: a genuine failure
// names the node; a cancellation names none and keeps the ctx cause.
func (a *applier) fail(ctx context.Context, n *rnode, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.abortLocked()
	if a.res.Cause != nil {
		return
	}
	if isCancel(ctx, err) {
		a.res.Cause = context.Cause(ctx)
		return
	}
	a.res.Failed, a.res.Cause = n.ID, err
}

// isCancel reports whether err is the apply's ctx ending, not a failure.
func isCancel(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

func (a *applier) skip(n *rnode, why string) {
	a.mu.Lock()
	n.status = statusSkipped
	a.res.Skipped[n.ID] = why
	a.mu.Unlock()
	a.emit(n, PhaseSkipped, nil, why)
	a.o.Journal.node("node-skipped", n, nil, why)
}

// runNode is the goroutine of one node.
func (a *applier) runNode(ctx context.Context, n *rnode) {
	defer close(n.done)
	if len(n.deps) > 0 {
		ids := make([]string, len(n.deps))
		for i, d := range n.deps {
			ids[i] = d.ID
		}
		a.emit(n, PhaseWaiting, nil, "after "+strings.Join(ids, ", "))
	}
	for _, d := range n.deps {
		select {
		case <-d.done:
		case <-ctx.Done():
		}
	}
	if ctx.Err() != nil {
		a.mu.Lock()
		a.abortLocked()
		a.mu.Unlock()
		a.skip(n, "cancelled")
		return
	}
	for _, d := range n.deps {
		if d.status != statusOK {
			if n.orphan && !slices.Contains(n.DependsOn, d.ID) {
				a.skip(n, "not started: the apply failed (orphans are removed last)")
			} else {
				a.skip(n, "upstream failed: "+d.ID)
			}
			return
		}
	}
	if a.isAborted() {
		a.skip(n, "not started: the apply failed")
		return
	}
	if n.Action != planner.NoOp {
		a.emit(n, PhaseRunning, nil, n.Reason)
		a.o.Journal.node("node-start", n, nil, "")
	}
	err := a.perform(ctx, n)
	if err == nil && n.gate != gateNone {
		a.emit(n, PhaseHealthWait, nil, map[gateKind]string{gateHealthy: "waiting for health check", gateCompleted: "waiting for exit 0"}[n.gate])
		if n.gate == gateHealthy {
			err = a.waitHealthy(ctx, n)
		} else {
			err = a.waitCompleted(ctx, n)
		}
	}
	if errors.Is(err, errAborted) {
		why := "interrupted: the apply failed"
		if ctx.Err() != nil {
			why = "interrupted: cancelled"
		}
		a.skip(n, why)
		return
	}
	if err != nil && isCancel(ctx, err) {
		a.fail(ctx, n, err)
		a.skip(n, "interrupted: cancelled")
		return
	}
	if err != nil {
		n.status = statusFailed
		a.fail(ctx, n, err)
		a.emit(n, PhaseFailed, err, "")
		a.o.Journal.node("node-failed", n, &n.ref, err.Error())
		return
	}
	n.status = statusOK
	a.mu.Lock()
	switch n.Action {
	case planner.Create:
		a.res.Created++
	case planner.Update:
		a.res.Updated++
	case planner.Replace:
		a.res.Replaced++
	case planner.Delete:
		a.res.Deleted++
	case planner.Start:
		a.res.Started++
	case planner.Stop:
		a.res.Stopped++
	}
	a.mu.Unlock()
	if n.Action != planner.NoOp || n.gate != gateNone {
		a.emit(n, PhaseDone, nil, "")
	}
	if n.Action != planner.NoOp {
		a.o.Journal.node("node-done", n, &n.ref, "")
	}
}

// slot runs fn holding one parallelism slot.
func (a *applier) slot(ctx context.Context, fn func() error) error {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-a.sem }()
	return fn()
}

// call runs one mutating driver call: it refuses once the apply aborted,
// holds a slot, journals the call and, on success, pushes its undo.
//
// A create or delete must be announced on disk before it runs (see
// durableBeforeReturn), but an fsync inside the slot would add its latency
// to every such call. So, with a journal, it first takes a ticket of the
// announce window (at most Parallel calls announced and not yet running),
// writes its op-intent and starts the fsync, and only then waits for a
// slot: the fsync (shared with the other announced calls) runs while the
// slots are busy with earlier calls. Holding the slot, it waits until
// the op-intent is durable (normally long done), writes op-start (not
// fsynced) and calls. A call announced and then not run is closed by
// op-cancelled.
func (a *applier) call(ctx context.Context, n *rnode, op string, ref *drivers.ObjectRef, fn func() error, undo func() *undoEntry) error {
	j := a.o.Journal
	var intent uint64 // the op-intent's sequence number, 0 for none
	ticket := false   // holding a ticket of the announce window
	if j != nil && durableOp(op) {
		if a.isAborted() {
			return errAborted
		}
		select {
		case a.ahead <- struct{}{}:
		case <-a.abortCh:
			return errAborted
		case <-ctx.Done():
			return ctx.Err()
		}
		ticket = true
		intent = j.append(opEntry("op-intent", n, op, *ref, nil))
		j.syncSoon(intent)
	}
	var callErr error
	err := a.slot(ctx, func() error {
		if ticket {
			<-a.ahead
			ticket = false
		}
		if a.isAborted() {
			return errAborted
		}
		a.emit(n, PhaseRunning, nil, op+" "+ref.Name)
		if intent != 0 {
			j.waitDurable(intent)
			j.append(opEntry("op-start", n, op, *ref, nil))
		} else {
			j.beganDurable()
			j.op("op-start", n, op, *ref, nil)
		}
		callErr = fn()
		return nil
	})
	if ticket { // the slot wait was cancelled
		<-a.ahead
	}
	if err != nil {
		if intent != 0 {
			j.op("op-cancelled", n, op, *ref, nil)
		}
		return err
	}
	// The slot is free again: journal the outcome outside it.
	if callErr != nil {
		j.op("op-failed", n, op, *ref, callErr)
		return fmt.Errorf("%s %s: %w", op, ref.Name, callErr)
	}
	if undo != nil {
		if u := undo(); u != nil {
			a.mu.Lock()
			a.undo = append(a.undo, u)
			a.mu.Unlock()
		}
	}
	j.op("op-done", n, op, *ref, nil)
	return nil
}

// target builds the driver target for the node's desired instance.
func (a *applier) target(n *rnode) (drivers.Target, error) {
	if n.Desired == nil || n.Owner == nil {
		return drivers.Target{}, fmt.Errorf("node %s: %s needs the desired instance and its ownership record", n.ID, n.Action)
	}
	name := n.Object
	if name == "" {
		name = planner.ObjectName(a.plan.Stack, n.Desired)
	}
	return a.targetFor(n.Desired, name, *n.Owner), nil
}

func (a *applier) targetFor(inst *manifest.Instance, name string, owner drivers.Ownership) drivers.Target {
	t := drivers.Target{Stack: a.plan.Stack, Instance: inst, ObjectName: name, Owner: owner}
	if a.o.Stack != nil {
		t.StackDir = a.o.Stack.Dir
		if inst.Provider != "" {
			t.Provider = a.o.Stack.Providers[inst.Provider]
		}
	}
	return t
}

// lastApplied rebuilds the target an existing object was made from, out
// of its ownership record (the last-applied spec). Secret fields in it are
// masked: see docs/executor.md.
func (a *applier) lastApplied(n *rnode, obs *drivers.ObservedInstance) (drivers.Target, error) {
	if obs == nil || obs.Owner == nil || len(obs.Owner.Spec) == 0 {
		return drivers.Target{}, fmt.Errorf("no last-applied spec recorded on %s", refName(obs))
	}
	var inst manifest.Instance
	if err := json.Unmarshal(obs.Owner.Spec, &inst); err != nil {
		return drivers.Target{}, fmt.Errorf("last-applied spec of %s: %w", obs.Ref.Name, err)
	}
	inst.Name = obs.Owner.Instance
	if inst.Backend == "" {
		inst.Backend = obs.Ref.Backend
	}
	if inst.Provider == "" {
		inst.Provider = obs.Ref.Provider
	}
	return a.targetFor(&inst, obs.Ref.Name, *obs.Owner), nil
}

func refName(o *drivers.ObservedInstance) string {
	if o == nil {
		return "an unknown object"
	}
	return o.Ref.Name
}

// stopTimeout is the instance's stop_grace_period or the default, read
// from the desired instance or the object's last-applied spec.
func stopTimeout(n *rnode) time.Duration {
	if n.Desired != nil && n.Desired.StopGracePeriod > 0 {
		return n.Desired.StopGracePeriod.D()
	}
	if n.Existing != nil && n.Existing.Owner != nil {
		var spec struct {
			StopGracePeriod manifest.Duration `json:"stop_grace_period"`
		}
		if json.Unmarshal(n.Existing.Owner.Spec, &spec) == nil && spec.StopGracePeriod > 0 {
			return spec.StopGracePeriod.D()
		}
	}
	return DefaultStopTimeout
}

func isRunning(o *drivers.ObservedInstance) bool {
	return o != nil && (o.State == drivers.StateRunning || o.State == drivers.StatePaused)
}
