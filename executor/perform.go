package executor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/planner"
)

// liveObject is one backend object the apply touched. Undo entries of the
// same object share it, so when a rollback recreates a deleted object the
// later undo steps (start it again) use the new reference.
type liveObject struct {
	ref drivers.ObjectRef
	// gone is set when the object was deleted for good (an orphan):
	// its earlier undo steps are skipped.
	gone bool
}

type undoKind int

const (
	undoDelete   undoKind = iota // undo a create
	undoStop                     // undo a start
	undoStart                    // undo a stop
	undoUpdate                   // restore the last-applied spec
	undoRecreate                 // recreate a deleted object from its last-applied spec
	undoKeep                     // report a deletion that is not undone
)

// undoEntry is the inverse of one completed driver call.
type undoEntry struct {
	node    *rnode
	kind    undoKind
	obj     *liveObject
	old     func() (drivers.Target, error) // undoUpdate, undoRecreate
	changed []string                       // undoUpdate
	restart bool                           // undoUpdate: stop/start after restoring
	timeout time.Duration
}

// perform runs the driver calls of one node.
func (a *applier) perform(ctx context.Context, n *rnode) error {
	switch n.Action {
	case planner.NoOp:
		return nil
	case planner.Create:
		t, err := a.target(n)
		if err != nil {
			return err
		}
		return a.createAndStart(ctx, n, t)
	case planner.Start:
		obj, err := existing(n)
		if err != nil {
			return err
		}
		return a.start(ctx, n, obj)
	case planner.Stop:
		obj, err := existing(n)
		if err != nil {
			return err
		}
		return a.stop(ctx, n, obj, true)
	case planner.Delete:
		obj, err := existing(n)
		if err != nil {
			return err
		}
		if isRunning(n.Existing) {
			if err := a.stop(ctx, n, obj, true); err != nil {
				return err
			}
		}
		return a.remove(ctx, n, obj, func() *undoEntry {
			obj.gone = true
			return &undoEntry{node: n, kind: undoKeep, obj: obj}
		})
	case planner.Update:
		return a.update(ctx, n)
	case planner.Replace:
		return a.replace(ctx, n)
	}
	return fmt.Errorf("node %s: unknown action %v", n.ID, n.Action)
}

func existing(n *rnode) (*liveObject, error) {
	if n.Existing == nil {
		return nil, fmt.Errorf("node %s: %s needs the existing object", n.ID, n.Action)
	}
	return &liveObject{ref: n.Existing.Ref}, nil
}

func (a *applier) create(ctx context.Context, n *rnode, t drivers.Target) (*liveObject, error) {
	obj := &liveObject{ref: drivers.ObjectRef{Backend: n.Backend, Provider: n.Provider, Name: t.ObjectName}}
	err := a.call(ctx, n, "create", &obj.ref, func() error {
		ref, err := n.drv.Create(ctx, t)
		if err == nil {
			obj.ref = ref
		}
		return err
	}, func() *undoEntry { return &undoEntry{node: n, kind: undoDelete, obj: obj} })
	return obj, err
}

func (a *applier) start(ctx context.Context, n *rnode, obj *liveObject) error {
	return a.call(ctx, n, "start", &obj.ref, func() error { return n.drv.Start(ctx, obj.ref) },
		func() *undoEntry { return &undoEntry{node: n, kind: undoStop, obj: obj, timeout: stopTimeout(n)} })
}

// stop stops the object. One that turns out not to be running (it exited
// or vanished since it was observed) is left as it is, with nothing to
// undo.
func (a *applier) stop(ctx context.Context, n *rnode, obj *liveObject, undoable bool) error {
	wasRunning := true
	var undo func() *undoEntry
	if undoable {
		undo = func() *undoEntry {
			if !wasRunning {
				return nil
			}
			return &undoEntry{node: n, kind: undoStart, obj: obj}
		}
	}
	return a.call(ctx, n, "stop", &obj.ref, func() error {
		err := n.drv.Stop(ctx, obj.ref, stopTimeout(n))
		if errors.Is(err, drivers.ErrNotRunning) || errors.Is(err, drivers.ErrNotFound) {
			wasRunning, err = false, nil
		}
		return err
	}, undo)
}

// remove deletes the object; undo says how to bring it back. One that is
// already gone counts as deleted, with nothing to undo (it was not there
// to restore).
func (a *applier) remove(ctx context.Context, n *rnode, obj *liveObject, undo func() *undoEntry) error {
	existed := true
	return a.call(ctx, n, "delete", &obj.ref, func() error {
		err := n.drv.Delete(ctx, obj.ref)
		if errors.Is(err, drivers.ErrNotFound) {
			existed, err = false, nil
		}
		return err
	}, func() *undoEntry {
		if !existed {
			obj.gone = true
			return nil
		}
		return undo()
	})
}

// update applies the changed fields in place; a restart update then stops
// and starts the object. Its undo restores the last-applied spec (and
// restarts), which also covers a failed stop or start of the restart.
func (a *applier) update(ctx context.Context, n *rnode) error {
	up, ok := n.drv.(drivers.Updater)
	if !ok {
		return fmt.Errorf("update: backend %s cannot update in place: %w", n.Backend, drivers.ErrUnsupported)
	}
	t, err := a.target(n)
	if err != nil {
		return err
	}
	obj, err := existing(n)
	if err != nil {
		return err
	}
	t.ObjectName = obj.ref.Name
	var changed []string
	for _, c := range n.Changes {
		changed = append(changed, c.Field)
	}
	old := func() (drivers.Target, error) { return a.lastApplied(n, n.Existing) }
	err = a.call(ctx, n, "update", &obj.ref, func() error { return up.Update(ctx, obj.ref, t, changed) },
		func() *undoEntry {
			return &undoEntry{node: n, kind: undoUpdate, obj: obj, old: old, changed: changed,
				restart: n.Restart, timeout: stopTimeout(n)}
		})
	if err != nil || !n.Restart {
		return err
	}
	if err := a.stop(ctx, n, obj, false); err != nil {
		return err
	}
	return a.call(ctx, n, "start", &obj.ref, func() error { return n.drv.Start(ctx, obj.ref) }, nil)
}

// replace recreates the object: create-before-destroy when the driver
// allows two objects of one name, else stop -> delete -> create -> start.
func (a *applier) replace(ctx context.Context, n *rnode) error {
	t, err := a.target(n)
	if err != nil {
		return err
	}
	old, err := existing(n)
	if err != nil {
		return err
	}
	wasRunning := isRunning(n.Existing)
	lastApplied := func() (drivers.Target, error) { return a.lastApplied(n, n.Existing) }
	removeOld := func() error {
		if wasRunning {
			if err := a.stop(ctx, n, old, true); err != nil {
				return err
			}
		}
		return a.remove(ctx, n, old, func() *undoEntry {
			return &undoEntry{node: n, kind: undoRecreate, obj: old, old: lastApplied}
		})
	}
	if n.drv.Capabilities().CreateBeforeDestroy {
		obj, err := a.create(ctx, n, t)
		if err != nil {
			return err
		}
		n.ref = obj.ref
		if err := a.start(ctx, n, obj); err != nil {
			return err
		}
		// Blue/green: with a healthcheck, the old object goes only once
		// its successor is healthy.
		if _, ok := n.drv.(drivers.Execer); ok && HealthArgv(a.healthcheckOf(n)) != nil {
			a.emit(n, PhaseHealthWait, nil, "waiting for the replacement to be healthy")
			if err := a.waitHealthy(ctx, n); err != nil {
				return err
			}
		}
		return removeOld()
	}
	if err := removeOld(); err != nil {
		return err
	}
	return a.createAndStart(ctx, n, t)
}

// createAndStart creates n's object from t, makes it the node's object
// and starts it: a Create node, and
// the second half of a stop-delete-create Replace.
func (a *applier) createAndStart(ctx context.Context, n *rnode, t drivers.Target) error {
	obj, err := a.create(ctx, n, t)
	if err != nil {
		return err
	}
	n.ref = obj.ref
	return a.start(ctx, n, obj)
}

// rollback undoes what the apply did, on a context that ignores the
// apply's cancellation. It walks the graph backwards: a node's undo steps
// run (in reverse order of completion) once every node that depends on it
// has been rolled back, so dependents are undone before what they depend
// on, and unrelated nodes are undone in parallel within the same
// Parallel bound. Each step is reported; a failed step does not stop the
// others.
func (a *applier) rollback(ctx context.Context) {
	a.o.Journal.mark("rollback-start", "")
	entries := map[*rnode][]*undoEntry{}
	for _, u := range a.undo {
		entries[u.node] = append(entries[u.node], u)
	}
	dependents := map[*rnode][]*rnode{}
	done := map[*rnode]chan struct{}{}
	for _, n := range a.nodes {
		done[n] = make(chan struct{})
		for _, d := range n.deps {
			dependents[d] = append(dependents[d], n)
		}
	}
	var wg sync.WaitGroup
	for _, n := range a.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[n])
			for _, dep := range dependents[n] {
				<-done[dep]
			}
			list := entries[n]
			for i := len(list) - 1; i >= 0; i-- {
				if u := list[i]; !u.obj.gone || u.kind == undoKeep {
					_ = a.slot(ctx, func() error { a.undoStep(ctx, u); return nil })
				}
			}
		}()
	}
	wg.Wait()
}

// undoStep runs and reports one undo entry.
func (a *applier) undoStep(ctx context.Context, u *undoEntry) {
	step := RollbackStep{NodeID: u.node.ID, Instance: u.node.Instance, Ref: u.obj.ref}
	switch u.kind {
	case undoDelete:
		step.Op, step.Detail = "delete", "created by this apply"
	case undoStop:
		step.Op, step.Detail = "stop", "started by this apply"
	case undoStart:
		step.Op, step.Detail = "start", "stopped by this apply"
	case undoUpdate:
		step.Op, step.Detail = "update", "restore last-applied spec"
		if u.restart {
			step.Detail += " and restart"
		}
	case undoRecreate:
		step.Op, step.Detail = "create", "recreate from its last-applied spec"
	case undoKeep:
		step.Op, step.Detail = "keep", "deleted orphan is not recreated"
	}
	a.emit(u.node, PhaseRollingBack, nil, step.Op+" "+step.Ref.Name)
	if u.kind != undoKeep {
		a.o.Journal.op("op-start", u.node, "rollback "+step.Op, step.Ref, nil)
	}
	step.Err = a.undoOne(ctx, u.node.drv, u)
	if step.Err != nil {
		step.Err = fmt.Errorf("%s %s: %w", step.Op, step.Ref.Name, step.Err)
	}
	a.mu.Lock()
	a.res.Rollback = append(a.res.Rollback, step)
	a.mu.Unlock()
	a.o.Journal.rollbackStep(step)
	a.emit(u.node, PhaseRolledBack, step.Err, step.String())
}

func (a *applier) undoOne(ctx context.Context, drv drivers.Driver, u *undoEntry) error {
	switch u.kind {
	case undoDelete:
		err := drv.Delete(ctx, u.obj.ref)
		if errors.Is(err, drivers.ErrNotFound) {
			return nil
		}
		return err
	case undoStop:
		err := drv.Stop(ctx, u.obj.ref, u.timeout)
		if errors.Is(err, drivers.ErrNotRunning) {
			return nil
		}
		return err
	case undoStart:
		return drv.Start(ctx, u.obj.ref)
	case undoUpdate:
		up, ok := drv.(drivers.Updater)
		if !ok {
			return drivers.ErrUnsupported
		}
		t, err := u.old()
		if err != nil {
			return err
		}
		if err := up.Update(ctx, u.obj.ref, t, u.changed); err != nil {
			return err
		}
		if u.restart {
			if err := drv.Stop(ctx, u.obj.ref, u.timeout); err != nil && !errors.Is(err, drivers.ErrNotRunning) {
				return err
			}
			return drv.Start(ctx, u.obj.ref)
		}
		return nil
	case undoRecreate:
		t, err := u.old()
		if err != nil {
			return err
		}
		ref, err := drv.Create(ctx, t)
		if err != nil {
			return err
		}
		u.obj.ref = ref
		return nil
	case undoKeep:
		return nil
	}
	return fmt.Errorf("unknown undo kind %d", u.kind)
}
