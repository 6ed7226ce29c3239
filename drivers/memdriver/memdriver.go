// Package memdriver is an in-memory berth driver for tests. It implements
// drivers.Driver, Updater, Execer and Logger, records every call in order
// with timestamps, and can be told to fail any call (by operation and object
// name, or "the Nth call"), to take time per operation, to answer health
// probes unhealthy N times before healthy, to behave as a one-shot instance
// that exits with a code, and to report any Capabilities. It also tracks the
// high-water mark of concurrent calls, so executor tests can prove their
// parallelism bound.
package memdriver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/planner"
)

// Op names one driver operation.
type Op string

// The operations a Driver records.
const (
	OpObserve Op = "observe"
	OpCreate  Op = "create"
	OpStart   Op = "start"
	OpStop    Op = "stop"
	OpDelete  Op = "delete"
	OpUpdate  Op = "update"
	OpExec    Op = "exec"
	OpLogs    Op = "logs"
)

// Mutating reports whether the operation changes live state.
func (o Op) Mutating() bool {
	switch o {
	case OpCreate, OpStart, OpStop, OpDelete, OpUpdate:
		return true
	}
	return false
}

// ErrInjected is the default error of an injected fault.
var ErrInjected = errors.New("memdriver: injected failure")

// Call is one recorded driver call.
type Call struct {
	Seq   int // 1-based, in the order calls began
	Op    Op
	Name  string   // object name ("" for Observe)
	Argv  []string // Exec only
	Start time.Time
	End   time.Time
	Err   error
}

func (c Call) String() string {
	s := string(c.Op)
	if c.Name != "" {
		s += " " + c.Name
	}
	if c.Err != nil {
		s += " (error: " + c.Err.Error() + ")"
	}
	return s
}

// Fault makes matching calls fail.
type Fault struct {
	// Op restricts the fault to one operation; "" matches every operation
	// except Observe and Logs (name those explicitly).
	Op Op
	// Name restricts the fault to one object name; "" matches any.
	Name string
	// Mutating restricts the fault to calls that change live state
	// (create, start, stop, delete, update).
	Mutating bool
	// Nth fails only the Nth matching call (1-based); 0 fails every one.
	Nth int
	// Err is returned; nil means ErrInjected.
	Err error

	seen int
}

// ExecFunc answers an Exec on one object; probe counts the Execs on that
// object so far (1-based).
type ExecFunc func(req drivers.ExecRequest, probe int) (exitCode int, err error)

// Object is one live in-memory object.
type Object struct {
	Ref      drivers.ObjectRef
	Owner    *drivers.Ownership
	State    drivers.State
	ExitCode *int
	Live     map[string]json.RawMessage
	Created  time.Time
	IPs      []string

	execs     int
	oneShot   *oneShot
	observesL int // observes left while running before a one-shot exits
	log       strings.Builder
}

type oneShot struct {
	code     int
	observes int
}

// Driver is the in-memory driver. The zero value is not usable; call New.
type Driver struct {
	name string

	mu        sync.Mutex
	caps      drivers.Capabilities
	objects   map[string]*Object // by ID
	nextID    int
	calls     []Call
	faults    []*Fault
	latency   map[Op]time.Duration
	blocks    []*block
	execs     map[string]ExecFunc
	oneShots  map[string]oneShot
	inflight  int
	highWater int
	now       func() time.Time
}

type block struct {
	op      Op
	name    string
	release chan struct{}
}

// New returns an empty driver serving the named backend, with every field
// updatable in place and create-before-destroy off.
func New(backend string) *Driver {
	return &Driver{
		name:     backend,
		caps:     drivers.Capabilities{Default: drivers.InPlace},
		objects:  map[string]*Object{},
		latency:  map[Op]time.Duration{},
		execs:    map[string]ExecFunc{},
		oneShots: map[string]oneShot{},
		now:      time.Now,
	}
}

// SetCapabilities sets what Capabilities returns. With
// CreateBeforeDestroy, object names are not exclusive (like Proxmox names).
func (d *Driver) SetCapabilities(c drivers.Capabilities) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.caps = c
}

// Fail adds a fault. Every fault counts the calls it matches; when several
// fire on one call, the first added wins.
func (d *Driver) Fail(f Fault) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults = append(d.faults, &f)
}

// FailOn fails every call of op on the named object.
func (d *Driver) FailOn(op Op, name string) { d.Fail(Fault{Op: op, Name: name}) }

// FailNth fails the nth call (1-based) of any op but Observe and Logs.
func (d *Driver) FailNth(n int) { d.Fail(Fault{Nth: n}) }

// ClearFaults removes every fault.
func (d *Driver) ClearFaults() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults = nil
}

// SetLatency makes every call of op take at least dur (honouring ctx).
func (d *Driver) SetLatency(op Op, dur time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.latency[op] = dur
}

// Block makes calls of op on the named object ("" = any) wait until the
// returned release function is called (or their ctx ends). It lets tests
// hold a call in flight deterministically, without timing.
func (d *Driver) Block(op Op, name string) (release func()) {
	b := &block{op: op, name: name, release: make(chan struct{})}
	d.mu.Lock()
	d.blocks = append(d.blocks, b)
	d.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(b.release) }) }
}

// SetExec sets how Exec answers on the named object.
func (d *Driver) SetExec(name string, fn ExecFunc) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.execs[name] = fn
}

// HealthyAfter makes the first n Execs on the named object exit 1 and every
// later one exit 0: a health check that passes on probe n+1.
func (d *Driver) HealthyAfter(name string, n int) {
	d.SetExec(name, func(_ drivers.ExecRequest, probe int) (int, error) {
		if probe <= n {
			return 1, nil
		}
		return 0, nil
	})
}

// NeverHealthy makes every Exec on the named object exit 1.
func (d *Driver) NeverHealthy(name string) {
	d.SetExec(name, func(drivers.ExecRequest, int) (int, error) { return 1, nil })
}

// OneShot makes the named object, once started, report running for the
// given number of Observe calls and then exited with code (0 observes:
// it has exited by the first Observe after Start).
func (d *Driver) OneShot(name string, code, observes int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.oneShots[name] = oneShot{code: code, observes: observes}
	for _, o := range d.objects {
		if o.Ref.Name == name {
			o.oneShot = &oneShot{code: code, observes: observes}
		}
	}
}

// Put adds an object directly, without recording a call: seed state or a
// foreign object (Owner nil). Its ID is assigned when empty.
func (d *Driver) Put(o drivers.ObservedInstance) drivers.ObjectRef {
	d.mu.Lock()
	defer d.mu.Unlock()
	obj := &Object{Ref: o.Ref, Owner: cloneOwner(o.Owner), State: o.State, ExitCode: o.ExitCode,
		Live: cloneLive(o.Live), Created: o.Created, IPs: o.IPs}
	if obj.Ref.Backend == "" {
		obj.Ref.Backend = d.name
	}
	if obj.Ref.ID == "" {
		d.nextID++
		obj.Ref.ID = "mem-" + strconv.Itoa(d.nextID)
	}
	if obj.State == "" {
		obj.State = drivers.StateCreated
	}
	if obj.Created.IsZero() {
		obj.Created = d.now()
	}
	d.objects[obj.Ref.ID] = obj
	return obj.Ref
}

// Exit makes the named running object exit with code now.
func (d *Driver) Exit(name string, code int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.findLocked(drivers.ObjectRef{Name: name})
	if err != nil {
		return err
	}
	o.State = drivers.StateExited
	o.ExitCode = &code
	return nil
}

// Calls returns a copy of the call log.
func (d *Driver) Calls() []Call {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Call(nil), d.calls...)
}

// MutatingCalls returns the recorded calls that change live state.
func (d *Driver) MutatingCalls() []Call {
	var out []Call
	for _, c := range d.Calls() {
		if c.Op.Mutating() {
			out = append(out, c)
		}
	}
	return out
}

// ResetCalls clears the call log and the high-water mark.
func (d *Driver) ResetCalls() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = nil
	d.highWater = 0
}

// HighWater is the largest number of calls that were in flight at once.
func (d *Driver) HighWater() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.highWater
}

// Objects returns a snapshot of every object, sorted by name then ID.
func (d *Driver) Objects() []drivers.ObservedInstance {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.observeLocked(false)
}

// Snapshot renders live state for equality checks: one line per object
// with name, state, exit code, owner (stack, instance, hash, spec) and live
// fields, sorted. Backend IDs and timestamps are left out, so an object
// deleted and recreated from the same spec compares equal.
func (d *Driver) Snapshot() string {
	var lines []string
	for _, o := range d.Objects() {
		owner := "foreign"
		if o.Owner != nil {
			owner = fmt.Sprintf("%s/%s hash=%s spec=%s", o.Owner.Stack, o.Owner.Instance, o.Owner.SpecHash, o.Owner.Spec)
		}
		code := ""
		if o.ExitCode != nil {
			code = fmt.Sprintf(" exit=%d", *o.ExitCode)
		}
		live, _ := json.Marshal(o.Live)
		lines = append(lines, fmt.Sprintf("%s %s%s %s live=%s", o.Ref.Name, o.State, code, owner, live))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// AppendLog adds text to the named object's log.
func (d *Driver) AppendLog(name, text string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, err := d.findLocked(drivers.ObjectRef{Name: name})
	if err != nil {
		return err
	}
	o.log.WriteString(text)
	return nil
}

// begin records a call, applies faults, latency and blocks, and returns
// the call's index and the error to fail with (nil: proceed).
func (d *Driver) begin(ctx context.Context, op Op, name string, argv []string) (int, error) {
	d.mu.Lock()
	idx := len(d.calls)
	d.calls = append(d.calls, Call{Seq: idx + 1, Op: op, Name: name, Argv: argv, Start: d.now()})
	d.inflight++
	if d.inflight > d.highWater {
		d.highWater = d.inflight
	}
	var ferr error
	for _, f := range d.faults {
		if f.Op == "" && (op == OpObserve || op == OpLogs) || f.Op != "" && f.Op != op {
			continue
		}
		if f.Name != "" && f.Name != name || f.Mutating && !op.Mutating() {
			continue
		}
		f.seen++ // every fault counts its matching calls, even when another fires
		if ferr == nil && (f.Nth == 0 || f.seen == f.Nth) {
			ferr = f.Err
			if ferr == nil {
				ferr = ErrInjected
			}
			ferr = fmt.Errorf("%s %s: %w", op, name, ferr)
		}
	}
	lat := d.latency[op]
	var waits []chan struct{}
	for _, b := range d.blocks {
		if b.op == op && (b.name == "" || b.name == name) {
			waits = append(waits, b.release)
		}
	}
	d.mu.Unlock()

	if lat > 0 {
		t := time.NewTimer(lat)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return idx, ctx.Err()
		}
	}
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return idx, ctx.Err()
		}
	}
	if ferr != nil {
		return idx, ferr
	}
	return idx, ctx.Err()
}

// end finishes a call; it must be called with d.mu held.
func (d *Driver) endLocked(idx int, err error) error {
	d.calls[idx].End = d.now()
	d.calls[idx].Err = err
	d.inflight--
	return err
}

func (d *Driver) end(idx int, err error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.endLocked(idx, err)
}

// findLocked resolves a ref by ID, else by name (which must be unique).
func (d *Driver) findLocked(ref drivers.ObjectRef) (*Object, error) {
	if ref.ID != "" {
		if o, ok := d.objects[ref.ID]; ok {
			return o, nil
		}
		return nil, fmt.Errorf("memdriver: %s (%s): %w", ref.Name, ref.ID, drivers.ErrNotFound)
	}
	var found *Object
	for _, o := range d.objects {
		if o.Ref.Name == ref.Name {
			if found != nil {
				return nil, fmt.Errorf("memdriver: %s: name is ambiguous, give the ID", ref.Name)
			}
			found = o
		}
	}
	if found == nil {
		return nil, fmt.Errorf("memdriver: %s: %w", ref.Name, drivers.ErrNotFound)
	}
	return found, nil
}

// Name implements drivers.Driver.
func (d *Driver) Name() string { return d.name }

// Capabilities implements drivers.Driver.
func (d *Driver) Capabilities() drivers.Capabilities {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.caps
}

// Observe implements drivers.Driver: every object, whatever its stack.
// Running one-shot objects count down towards their exit on each Observe.
func (d *Driver) Observe(ctx context.Context, stack string) ([]drivers.ObservedInstance, error) {
	idx, err := d.begin(ctx, OpObserve, "", nil)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		return nil, d.endLocked(idx, err)
	}
	out := d.observeLocked(true)
	d.endLocked(idx, nil)
	return out, nil
}

func (d *Driver) observeLocked(tick bool) []drivers.ObservedInstance {
	out := make([]drivers.ObservedInstance, 0, len(d.objects))
	for _, o := range d.objects {
		if tick && o.State == drivers.StateRunning && o.oneShot != nil {
			if o.observesL <= 0 {
				o.State = drivers.StateExited
				c := o.oneShot.code
				o.ExitCode = &c
			} else {
				o.observesL--
			}
		}
		var code *int
		if o.ExitCode != nil {
			c := *o.ExitCode
			code = &c
		}
		out = append(out, drivers.ObservedInstance{
			Ref: o.Ref, Owner: cloneOwner(o.Owner), State: o.State, ExitCode: code,
			IPs: append([]string(nil), o.IPs...), Created: o.Created, Live: cloneLive(o.Live),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Ref.Name != out[j].Ref.Name {
			return out[i].Ref.Name < out[j].Ref.Name
		}
		return out[i].Ref.ID < out[j].Ref.ID
	})
	return out
}

// LiveFields renders the target instance's fields exactly as the planner's
// canonical spec does (secrets masked): what Live reports.
func LiveFields(t drivers.Target) map[string]json.RawMessage {
	if t.Instance == nil {
		return nil
	}
	b, _ := planner.CanonicalSpec(t.Instance)
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

// Create implements drivers.Driver.
func (d *Driver) Create(ctx context.Context, t drivers.Target) (drivers.ObjectRef, error) {
	idx, err := d.begin(ctx, OpCreate, t.ObjectName, nil)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		return drivers.ObjectRef{}, d.endLocked(idx, err)
	}
	if t.ObjectName == "" {
		return drivers.ObjectRef{}, d.endLocked(idx, errors.New("memdriver: create: empty object name"))
	}
	if !d.caps.CreateBeforeDestroy {
		for _, o := range d.objects {
			if o.Ref.Name == t.ObjectName {
				return drivers.ObjectRef{}, d.endLocked(idx, fmt.Errorf("memdriver: create %s: %w", t.ObjectName, drivers.ErrExists))
			}
		}
	}
	d.nextID++
	o := &Object{
		Ref:     drivers.ObjectRef{Backend: d.name, Name: t.ObjectName, ID: "mem-" + strconv.Itoa(d.nextID)},
		Owner:   cloneOwner(&t.Owner),
		State:   drivers.StateCreated,
		Live:    LiveFields(t),
		Created: d.now(),
	}
	if t.Provider != nil {
		o.Ref.Provider = t.Provider.Name
	}
	if shot, ok := d.oneShots[t.ObjectName]; ok {
		o.oneShot = &shot
	}
	d.objects[o.Ref.ID] = o
	return o.Ref, d.endLocked(idx, nil)
}

// Start implements drivers.Driver; starting a running object is a no-op.
func (d *Driver) Start(ctx context.Context, ref drivers.ObjectRef) error {
	return d.onObject(ctx, OpStart, ref, func(o *Object) error {
		if o.State != drivers.StateRunning {
			o.State = drivers.StateRunning
			o.ExitCode = nil
			o.execs = 0
			if o.oneShot != nil {
				o.observesL = o.oneShot.observes
			}
			fmt.Fprintf(&o.log, "%s started\n", o.Ref.Name)
		}
		return nil
	})
}

// Stop implements drivers.Driver; stopping a stopped object is a no-op.
func (d *Driver) Stop(ctx context.Context, ref drivers.ObjectRef, timeout time.Duration) error {
	return d.onObject(ctx, OpStop, ref, func(o *Object) error {
		if o.State == drivers.StateRunning || o.State == drivers.StatePaused {
			o.State = drivers.StateStopped
			fmt.Fprintf(&o.log, "%s stopped\n", o.Ref.Name)
		} else if o.State == drivers.StateExited {
			o.State = drivers.StateStopped
		}
		return nil
	})
}

// Delete implements drivers.Driver.
func (d *Driver) Delete(ctx context.Context, ref drivers.ObjectRef) error {
	return d.onObject(ctx, OpDelete, ref, func(o *Object) error {
		delete(d.objects, o.Ref.ID)
		return nil
	})
}

// Update implements drivers.Updater: the changed fields take the target's
// values in Live, and the ownership record becomes the target's.
func (d *Driver) Update(ctx context.Context, ref drivers.ObjectRef, t drivers.Target, changed []string) error {
	return d.onObject(ctx, OpUpdate, ref, func(o *Object) error {
		for _, f := range changed {
			if k := d.caps.Cost(f); k == drivers.Replace {
				return fmt.Errorf("memdriver: update %s: field %s cannot change in place: %w", ref.Name, f, drivers.ErrUnsupported)
			}
		}
		want := LiveFields(t)
		if o.Live == nil {
			o.Live = map[string]json.RawMessage{}
		}
		for _, f := range changed {
			if v, ok := want[f]; ok {
				o.Live[f] = v
			} else {
				delete(o.Live, f)
			}
		}
		o.Owner = cloneOwner(&t.Owner)
		return nil
	})
}

// onObject is one recorded call of op on an existing object: begin (the
// injected faults, latency and blocks), then, under d.mu, find ref and run
// change on it; the call ends with the first error.
func (d *Driver) onObject(ctx context.Context, op Op, ref drivers.ObjectRef, change func(o *Object) error) error {
	idx, err := d.begin(ctx, op, ref.Name, nil)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		return d.endLocked(idx, err)
	}
	o, err := d.findLocked(ref)
	if err != nil {
		return d.endLocked(idx, err)
	}
	return d.endLocked(idx, change(o))
}

// Exec implements drivers.Execer. Unless SetExec gave the object its own
// answer, it understands a few commands: `sh -c "exit N"` exits N, true
// exits 0, false exits 1, echo prints its arguments, and a binary outside
// {sh, true, false, echo, sleep, cat, test, [} exits 127 (not found).
func (d *Driver) Exec(ctx context.Context, ref drivers.ObjectRef, req drivers.ExecRequest) (int, error) {
	idx, err := d.begin(ctx, OpExec, ref.Name, append([]string(nil), req.Argv...))
	d.mu.Lock()
	if err != nil {
		d.mu.Unlock()
		return -1, d.end(idx, err)
	}
	o, err := d.findLocked(ref)
	if err != nil {
		d.endLocked(idx, err)
		d.mu.Unlock()
		return -1, err
	}
	if o.State != drivers.StateRunning {
		err := fmt.Errorf("memdriver: exec in %s: %w", ref.Name, drivers.ErrNotRunning)
		d.endLocked(idx, err)
		d.mu.Unlock()
		return -1, err
	}
	o.execs++
	probe := o.execs
	fn := d.execs[o.Ref.Name]
	d.mu.Unlock()

	var code int
	if fn != nil {
		code, err = fn(req, probe)
	} else {
		code = defaultExec(req)
	}
	return code, d.end(idx, err)
}

func defaultExec(req drivers.ExecRequest) int {
	if len(req.Argv) == 0 {
		return 127
	}
	switch path.Base(req.Argv[0]) {
	case "sh":
		if len(req.Argv) == 3 && req.Argv[1] == "-c" {
			script := strings.TrimSpace(req.Argv[2])
			if rest, ok := strings.CutPrefix(script, "exit"); ok {
				n, err := strconv.Atoi(strings.TrimSpace(rest))
				if err == nil || strings.TrimSpace(rest) == "" {
					return n
				}
			}
		}
		return 0
	case "true", "sleep", "cat", "test", "[":
		return 0
	case "false":
		return 1
	case "echo":
		if req.Stdout != nil {
			io.WriteString(req.Stdout, strings.Join(req.Argv[1:], " ")+"\n")
		}
		return 0
	}
	return 127
}

// Logs implements drivers.Logger: it writes the object's log (start and
// stop lines plus anything AppendLog added); with follow it then waits for
// ctx to end.
func (d *Driver) Logs(ctx context.Context, ref drivers.ObjectRef, follow bool, w io.Writer) error {
	idx, err := d.begin(ctx, OpLogs, ref.Name, nil)
	d.mu.Lock()
	if err != nil {
		d.mu.Unlock()
		return d.end(idx, err)
	}
	o, err := d.findLocked(ref)
	if err != nil {
		d.endLocked(idx, err)
		d.mu.Unlock()
		return err
	}
	text := o.log.String()
	d.mu.Unlock()
	if _, err := io.WriteString(w, text); err != nil {
		return d.end(idx, err)
	}
	if follow {
		<-ctx.Done()
	}
	return d.end(idx, nil)
}

func cloneOwner(o *drivers.Ownership) *drivers.Ownership {
	if o == nil {
		return nil
	}
	c := *o
	c.Spec = append(json.RawMessage(nil), o.Spec...)
	return &c
}

func cloneLive(m map[string]json.RawMessage) map[string]json.RawMessage {
	if m == nil {
		return nil
	}
	c := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		c[k] = append(json.RawMessage(nil), v...)
	}
	return c
}

var (
	_ drivers.Driver  = (*Driver)(nil)
	_ drivers.Updater = (*Driver)(nil)
	_ drivers.Execer  = (*Driver)(nil)
	_ drivers.Logger  = (*Driver)(nil)
)
