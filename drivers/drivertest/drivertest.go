// Package drivertest is the contract suite every berth backend must pass.
// A backend's test supplies a Harness (how to make a fresh driver, a minimal
// valid instance, a foreign object) and calls Run; the suite then checks the
// behaviour the planner and executor rely on: ownership round-trips through
// Observe, lifecycle states, exec exit codes, in-place updates, sentinel
// errors, foreign and other-stack objects, one-shot exits and concurrent
// creates. See docs/executor.md ("The driver contract suite").
package drivertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/manifest"
	"github.com/berth-dev/berth/planner"
)

// Harness tells the suite how to drive one backend.
type Harness struct {
	// New returns a fresh driver. Register any teardown with t.Cleanup.
	New func(t *testing.T) drivers.Driver
	// Stack is the stack name objects are created under. Objects of a
	// second stack, Stack+"-other", are created too.
	Stack string
	// Running returns a minimal valid instance named name that keeps
	// running once started (e.g. `sleep` forever).
	Running func(name string) *manifest.Instance
	// Exiting returns an instance named name that exits on its own with
	// code soon after it starts. It may configure d. Nil skips the
	// one-shot checks.
	Exiting func(t *testing.T, d drivers.Driver, name string, code int) *manifest.Instance
	// MakeForeign creates an object named name that berth does not own
	// (made by hand, without an ownership record) and registers its
	// removal with t.Cleanup. Nil skips the foreign-object check.
	MakeForeign func(t *testing.T, d drivers.Driver, name string)
	// UpdateInPlace changes one field of inst that the backend updates in
	// place (Capabilities cost InPlace) and returns that field's name
	// ("memory"). Nil, or a driver that is no drivers.Updater, skips the
	// update check.
	UpdateInPlace func(inst *manifest.Instance) string

	// Provider and StackDir are passed in every Target.
	Provider *manifest.Provider
	StackDir string
	// ObjectName names backend objects; default "<stack>-<instance>".
	ObjectName func(stack string, inst *manifest.Instance) string

	// Exec cases, for drivers that are a drivers.Execer. ExecOK must exit
	// 0 (default `/bin/sh -c "exit 0"`), ExecFail must exit ExecFailCode
	// (default `/bin/sh -c "exit 3"`, 3), ExecMissing runs a binary that
	// does not exist (default /nonexistent/berth-missing) and must give a
	// non-zero exit code or an error.
	ExecOK       []string
	ExecFail     []string
	ExecFailCode int
	ExecMissing  []string

	// StopTimeout is passed to Stop (default 5s). WaitTimeout bounds how
	// long the suite polls Observe for a one-shot to exit (default 60s).
	StopTimeout time.Duration
	WaitTimeout time.Duration
}

func (h *Harness) defaults() {
	if h.ObjectName == nil {
		h.ObjectName = planner.ObjectName
	}
	if h.ExecOK == nil {
		h.ExecOK = []string{"/bin/sh", "-c", "exit 0"}
	}
	if h.ExecFail == nil {
		h.ExecFail, h.ExecFailCode = []string{"/bin/sh", "-c", "exit 3"}, 3
	}
	if h.ExecMissing == nil {
		h.ExecMissing = []string{"/nonexistent/berth-missing"}
	}
	if h.StopTimeout == 0 {
		h.StopTimeout = 5 * time.Second
	}
	if h.WaitTimeout == 0 {
		h.WaitTimeout = 60 * time.Second
	}
}

// Run runs the contract suite as subtests of t.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil || h.Running == nil || h.Stack == "" {
		t.Fatal("drivertest: Harness needs New, Running and Stack")
	}
	h.defaults()
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, &h) })
	t.Run("CreateExisting", func(t *testing.T) { testCreateExisting(t, &h) })
	t.Run("Foreign", func(t *testing.T) { testForeign(t, &h) })
	t.Run("OtherStack", func(t *testing.T) { testOtherStack(t, &h) })
	t.Run("OneShot", func(t *testing.T) { testOneShot(t, &h) })
	t.Run("ConcurrentCreates", func(t *testing.T) { testConcurrentCreates(t, &h) })
}

// Owner returns the ownership record berth writes for inst: the planner's
// canonical spec and its hash.
func Owner(stack string, inst *manifest.Instance) drivers.Ownership {
	spec, hash := planner.CanonicalSpec(inst)
	return drivers.Ownership{Stack: stack, Instance: inst.Name, SpecHash: hash, Spec: spec}
}

func (h *Harness) target(stack string, inst *manifest.Instance) drivers.Target {
	return drivers.Target{
		Stack: stack, Instance: inst, Provider: h.Provider, StackDir: h.StackDir,
		ObjectName: h.ObjectName(stack, inst), Owner: Owner(stack, inst),
	}
}

// create makes an object and registers its removal.
func (h *Harness) create(t *testing.T, d drivers.Driver, stack string, inst *manifest.Instance) (drivers.ObjectRef, drivers.Target) {
	t.Helper()
	tg := h.target(stack, inst)
	ref, err := d.Create(context.Background(), tg)
	if err != nil {
		t.Fatalf("Create %s: %v", tg.ObjectName, err)
	}
	t.Cleanup(func() { remove(t, d, ref) })
	return ref, tg
}

// remove deletes an object left behind by a failed check.
func remove(t *testing.T, d drivers.Driver, ref drivers.ObjectRef) {
	ctx := context.Background()
	if err := d.Delete(ctx, ref); err != nil && !errors.Is(err, drivers.ErrNotFound) {
		_ = d.Stop(ctx, ref, time.Second)
		if err := d.Delete(ctx, ref); err != nil && !errors.Is(err, drivers.ErrNotFound) {
			t.Logf("cleanup: delete %s: %v", ref.Name, err)
		}
	}
}

// find observes and returns the object ref names (nil when absent).
func find(t *testing.T, d drivers.Driver, stack string, ref drivers.ObjectRef) *drivers.ObservedInstance {
	t.Helper()
	obs, err := d.Observe(context.Background(), stack)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	return pick(obs, ref)
}

func pick(obs []drivers.ObservedInstance, ref drivers.ObjectRef) *drivers.ObservedInstance {
	for i := range obs {
		o := &obs[i]
		if o.Ref.Name == ref.Name && (ref.ID == "" || o.Ref.ID == "" || o.Ref.ID == ref.ID) {
			return o
		}
	}
	return nil
}

// jsonEqual compares two JSON texts by value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func checkOwner(t *testing.T, o *drivers.ObservedInstance, want drivers.Ownership) {
	t.Helper()
	if o.Owner == nil {
		t.Fatalf("%s: Owner is nil, want the ownership record written at Create", o.Ref.Name)
	}
	got := *o.Owner
	if got.Stack != want.Stack || got.Instance != want.Instance || got.SpecHash != want.SpecHash {
		t.Errorf("%s: owner = {stack %q instance %q hash %q}, want {stack %q instance %q hash %q}",
			o.Ref.Name, got.Stack, got.Instance, got.SpecHash, want.Stack, want.Instance, want.SpecHash)
	}
	if !jsonEqual(got.Spec, want.Spec) {
		t.Errorf("%s: owner spec did not round-trip:\n got %s\nwant %s", o.Ref.Name, got.Spec, want.Spec)
	}
}

func testLifecycle(t *testing.T, h *Harness) {
	ctx := context.Background()
	d := h.New(t)
	inst := h.Running("life")
	ref, tg := h.create(t, d, h.Stack, inst)
	if ref.Name != tg.ObjectName {
		t.Errorf("Create returned ref name %q, want %q", ref.Name, tg.ObjectName)
	}
	if ref.Backend != "" && ref.Backend != d.Name() {
		t.Errorf("Create returned backend %q, want %q", ref.Backend, d.Name())
	}

	o := find(t, d, h.Stack, ref)
	if o == nil {
		t.Fatalf("after Create, Observe does not list %s", ref.Name)
	}
	checkOwner(t, o, tg.Owner)
	if o.State != drivers.StateCreated && o.State != drivers.StateStopped {
		t.Errorf("after Create, state = %q, want created or stopped", o.State)
	}

	if err := d.Start(ctx, ref); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if o := find(t, d, h.Stack, ref); o == nil || o.State != drivers.StateRunning {
		t.Fatalf("after Start, observed %v, want running", stateOf(o))
	}

	if ex, ok := d.(drivers.Execer); ok {
		t.Run("Exec", func(t *testing.T) {
			for _, c := range []struct {
				argv []string
				want int
			}{{h.ExecOK, 0}, {h.ExecFail, h.ExecFailCode}} {
				code, err := ex.Exec(ctx, ref, drivers.ExecRequest{Argv: c.argv})
				if err != nil || code != c.want {
					t.Errorf("Exec %q = %d, %v; want exit %d", c.argv, code, err, c.want)
				}
			}
			code, err := ex.Exec(ctx, ref, drivers.ExecRequest{Argv: h.ExecMissing})
			if err == nil && code == 0 {
				t.Errorf("Exec of a missing binary %q exited 0, want a non-zero code or an error", h.ExecMissing)
			}
		})
	}

	if up, ok := d.(drivers.Updater); ok && h.UpdateInPlace != nil {
		t.Run("UpdateInPlace", func(t *testing.T) {
			next := *inst
			field := h.UpdateInPlace(&next)
			if cost := d.Capabilities().Cost(field); cost != drivers.InPlace {
				t.Errorf("UpdateInPlace changed %q, which costs %v, not in-place", field, cost)
			}
			ntg := h.target(h.Stack, &next)
			if err := up.Update(ctx, ref, ntg, []string{field}); err != nil {
				t.Fatalf("Update %s: %v", field, err)
			}
			o := find(t, d, h.Stack, ref)
			if o == nil {
				t.Fatalf("after Update, Observe does not list %s", ref.Name)
			}
			checkOwner(t, o, ntg.Owner)
			var all map[string]json.RawMessage
			spec, _ := planner.CanonicalSpec(&next)
			_ = json.Unmarshal(spec, &all)
			if got, ok := o.Live[field]; !ok || !jsonEqual(got, all[field]) {
				t.Errorf("after Update, Live[%q] = %s, want %s", field, got, all[field])
			}
			if o.State != drivers.StateRunning {
				t.Errorf("after an in-place Update, state = %q, want running", o.State)
			}
		})
	}

	if err := d.Stop(ctx, ref, h.StopTimeout); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if o := find(t, d, h.Stack, ref); o == nil || o.State != drivers.StateStopped {
		t.Fatalf("after Stop, observed %v, want stopped", stateOf(o))
	}
	if err := d.Delete(ctx, ref); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if o := find(t, d, h.Stack, ref); o != nil {
		t.Fatalf("after Delete, Observe still lists %s (%s)", ref.Name, o.State)
	}
	if err := d.Delete(ctx, ref); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("second Delete = %v, want an error wrapping drivers.ErrNotFound", err)
	}
}

func stateOf(o *drivers.ObservedInstance) string {
	if o == nil {
		return "nothing"
	}
	return string(o.State)
}

func testCreateExisting(t *testing.T, h *Harness) {
	d := h.New(t)
	if d.Capabilities().CreateBeforeDestroy {
		t.Skip("backend names are not exclusive (CreateBeforeDestroy): a second Create of a name is allowed")
	}
	inst := h.Running("dup")
	h.create(t, d, h.Stack, inst)
	ref, err := d.Create(context.Background(), h.target(h.Stack, inst))
	if err == nil {
		remove(t, d, ref)
	}
	if !errors.Is(err, drivers.ErrExists) {
		t.Errorf("Create of an existing name = %v, want an error wrapping drivers.ErrExists", err)
	}
}

func testForeign(t *testing.T, h *Harness) {
	if h.MakeForeign == nil {
		t.Skip("harness has no MakeForeign hook")
	}
	d := h.New(t)
	name := h.Stack + "-foreign"
	h.MakeForeign(t, d, name)
	mine, _ := h.create(t, d, h.Stack, h.Running("mine"))
	obs, err := d.Observe(context.Background(), h.Stack)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	f := pick(obs, drivers.ObjectRef{Name: name})
	if f == nil {
		t.Fatalf("Observe does not list the foreign object %s (the planner needs it to report name clashes)", name)
	}
	if f.Owner != nil {
		t.Errorf("foreign object %s has owner %+v, want nil", name, *f.Owner)
	}
	if m := pick(obs, mine); m == nil || m.Owner == nil {
		t.Errorf("own object %s missing or unowned next to a foreign one", mine.Name)
	}
}

func testOtherStack(t *testing.T, h *Harness) {
	d := h.New(t)
	other := h.Stack + "-other"
	a, ta := h.create(t, d, h.Stack, h.Running("same"))
	b, tb := h.create(t, d, other, h.Running("same"))
	obs, err := d.Observe(context.Background(), h.Stack)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	for _, c := range []struct {
		ref drivers.ObjectRef
		tg  drivers.Target
	}{{a, ta}, {b, tb}} {
		o := pick(obs, c.ref)
		if o == nil {
			t.Errorf("Observe(%q) does not list %s of stack %s", h.Stack, c.ref.Name, c.tg.Stack)
			continue
		}
		checkOwner(t, o, c.tg.Owner)
	}
}

func testOneShot(t *testing.T, h *Harness) {
	if h.Exiting == nil {
		t.Skip("harness has no one-shot instance (Exiting)")
	}
	for _, code := range []int{0, 3} {
		t.Run(fmt.Sprintf("exit%d", code), func(t *testing.T) {
			d := h.New(t)
			inst := h.Exiting(t, d, fmt.Sprintf("oneshot%d", code), code)
			ref, _ := h.create(t, d, h.Stack, inst)
			if err := d.Start(context.Background(), ref); err != nil {
				t.Fatalf("Start: %v", err)
			}
			deadline := time.Now().Add(h.WaitTimeout)
			for {
				o := find(t, d, h.Stack, ref)
				if o == nil {
					t.Fatalf("one-shot %s vanished from Observe", ref.Name)
				}
				if o.State == drivers.StateExited {
					if o.ExitCode == nil || *o.ExitCode != code {
						t.Errorf("exited one-shot reports exit code %v, want %d", fmtCode(o.ExitCode), code)
					}
					return
				}
				if o.State != drivers.StateRunning && o.State != drivers.StateCreated {
					t.Fatalf("one-shot state = %q, want running until it is exited", o.State)
				}
				if time.Now().After(deadline) {
					t.Fatalf("one-shot %s still %s after %v, want exited with code %d", ref.Name, o.State, h.WaitTimeout, code)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

func fmtCode(c *int) string {
	if c == nil {
		return "nil"
	}
	return fmt.Sprint(*c)
}

func testConcurrentCreates(t *testing.T, h *Harness) {
	d := h.New(t)
	const n = 5
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		refs []drivers.ObjectRef
		errs []error
		tgs  = make([]drivers.Target, n)
	)
	for i := range n {
		tgs[i] = h.target(h.Stack, h.Running(fmt.Sprintf("par%d", i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref, err := d.Create(context.Background(), tgs[i])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("create %s: %w", tgs[i].ObjectName, err))
				return
			}
			refs = append(refs, ref)
		}()
	}
	wg.Wait()
	for _, r := range refs {
		t.Cleanup(func() { remove(t, d, r) })
	}
	if len(errs) > 0 {
		t.Fatalf("concurrent creates failed: %v", errors.Join(errs...))
	}
	obs, err := d.Observe(context.Background(), h.Stack)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	for _, tg := range tgs {
		o := pick(obs, drivers.ObjectRef{Name: tg.ObjectName})
		if o == nil {
			t.Errorf("after concurrent creates, %s is missing", tg.ObjectName)
			continue
		}
		checkOwner(t, o, tg.Owner)
	}
	errs = nil
	for _, r := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.Delete(context.Background(), r); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Errorf("concurrent deletes failed: %v", errors.Join(errs...))
	}
}
