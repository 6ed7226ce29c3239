package planner

import (
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/drivers"
)

// simulateApply is what a successful apply does to the observed state, as
// the executor and a driver would leave it: created, updated and replaced
// objects carry the node's ownership record and run, started objects run,
// stopped ones stop, deleted ones are gone. Live values read back equal
// what was applied.
func simulateApply(t *testing.T, p *Plan, observed []drivers.ObservedInstance) []drivers.ObservedInstance {
	t.Helper()
	type key struct{ backend, name string }
	state := map[key]drivers.ObservedInstance{}
	var order []key
	seen := map[key]bool{}
	put := func(o drivers.ObservedInstance) {
		k := key{o.Ref.Backend, o.Ref.Name}
		if !seen[k] {
			seen[k] = true
			order = append(order, k)
		}
		state[k] = o
	}
	for _, o := range observed {
		put(o)
	}
	for _, n := range p.Nodes {
		switch n.Action {
		case Create, Update, Replace:
			if n.Existing != nil && n.Existing.Ref.Name != n.Object {
				delete(state, key{n.Existing.Ref.Backend, n.Existing.Ref.Name})
			}
			owner := *n.Owner
			o := drivers.ObservedInstance{Ref: drivers.ObjectRef{Backend: n.Backend, Provider: n.Provider, Name: n.Object}, Owner: &owner, State: drivers.StateRunning}
			if n.Action == Update && n.Existing != nil {
				o.Ref = n.Existing.Ref
				o.State = n.Existing.State
				if n.Restart {
					o.State = drivers.StateRunning
				}
			}
			put(o)
		case Start, Stop:
			k := key{n.Existing.Ref.Backend, n.Existing.Ref.Name}
			o := state[k]
			o.State, o.ExitCode = drivers.StateRunning, nil
			if n.Action == Stop {
				o.State = drivers.StateStopped
			}
			state[k] = o
		case Delete:
			delete(state, key{n.Existing.Ref.Backend, n.Existing.Ref.Name})
		}
	}
	var out []drivers.ObservedInstance
	for _, k := range order {
		if o, ok := state[k]; ok {
			out = append(out, o)
		}
	}
	return out
}

// TestConverges applies every golden up/down plan in simulation and plans
// again: the second plan must have nothing left to do.
func TestConverges(t *testing.T) {
	dirs, err := filepath.Glob("testdata/plans/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			in := readCaseInput(t, dir)
			p, err := Compute(in)
			if err != nil {
				t.Skipf("plan-time error case: %v", err)
			}
			in.Observed = simulateApply(t, p, in.Observed)
			again, err := Compute(in)
			if err != nil {
				t.Fatalf("second plan: %v", err)
			}
			if again.HasChanges() {
				t.Errorf("not converged after one apply:\n%s", nodeLines(again))
			}
		})
	}
}
