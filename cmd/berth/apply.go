package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/planner"
)

// applySettings are what up and down share about running a plan.
type applySettings struct {
	Parallel   int    // --parallel N, BERTH_PARALLEL
	NoRollback bool   // --no-rollback
	Progress   string // --progress auto|tty|plain|json, BERTH_PROGRESS
}

// validate checks the settings before anything is observed or locked.
func (a applySettings) validate() error {
	if a.Parallel < 1 {
		return fmt.Errorf("--parallel %d: must be at least 1", a.Parallel)
	}
	switch a.Progress {
	case "", progressAuto, progressTTY, progressPlain, progressJSON:
		return nil
	}
	return fmt.Errorf("--progress %q: want auto, tty, plain or json", a.Progress)
}

// human returns the streams for text meant for people: with
// --progress=json, stdout carries only the JSON events, so the plan view
// and the summary go to stderr.
func (a applySettings) human(st streams) streams {
	if a.Progress == progressJSON {
		st.Out = st.Err
		st.Color = false
	}
	return st
}

// lockAndJournal takes the stack lock and opens the apply journal, telling
// the user about anything a crashed earlier run left in flight. release
// closes the journal and drops the lock.
func lockAndJournal(s *session, st streams) (j *executor.Journal, release func(), err error) {
	lock, err := executor.LockStack(s.stateDir, s.stack.Name)
	if err != nil {
		return nil, nil, err
	}
	j, err = executor.OpenJournal(s.stateDir, s.stack.Name)
	if err != nil {
		lock.Unlock()
		return nil, nil, err
	}
	reportJournal(st.Err, j)
	return j, func() {
		j.Close()
		lock.Unlock()
	}, nil
}

// lockedPlan is how up and down start once the session is loaded: take the
// stack lock and the apply journal (lockAndJournal), observe every backend
// once, print the warnings and plan in mode. The caller must call release
// when it is done applying.
func lockedPlan(ctx context.Context, s *session, open driverOpener, st streams, mode planner.Mode, keepOrphans bool) (p *planner.Plan, j *executor.Journal, release func(), err error) {
	j, release, err = lockAndJournal(s, st)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := s.observeAll(ctx, open); err != nil {
		release()
		return nil, nil, nil, err
	}
	s.printWarnings(st.Err)
	if p, err = s.plan(mode, keepOrphans); err != nil {
		release()
		return nil, nil, nil, err
	}
	return p, j, release, nil
}

// presentPlan prints the plan's human view on human.Out and reports
// whether it has anything to apply. Before a plan with changes it asks
// question on a terminal when ask is set; a "no" is the error
// "<command> cancelled: nothing was changed".
func presentPlan(p *planner.Plan, st, human streams, ask bool, question, command string) (apply bool, err error) {
	if err := planner.RenderText(human.Out, p, human.Color); err != nil {
		return false, err
	}
	if !p.HasChanges() {
		return false, nil
	}
	fmt.Fprintln(human.Out)
	if ask && st.InTTY && !confirm(streams{In: st.In, Out: human.Out}, question) {
		return false, fmt.Errorf("%s cancelled: nothing was changed", command)
	}
	return true, nil
}

// applyPlan runs p with progress, then prints the summary, or on failure
// the failed action, its cause and every rollback step. The error it
// returns has already been explained on the streams.
func applyPlan(ctx context.Context, s *session, p *planner.Plan, a applySettings, j *executor.Journal, st streams) (*executor.Result, error) {
	prog, err := newProgress(a.Progress, st)
	st = a.human(st)
	if err != nil {
		return nil, err
	}
	prog.Start(p)
	res, err := executor.Apply(ctx, p, executor.Options{
		Stack:      s.stack,
		Driver:     s.driver,
		Parallel:   a.Parallel,
		NoRollback: a.NoRollback,
		Events:     prog.Event,
		Journal:    j,
	})
	prog.Finish()
	if res == nil {
		if err == nil {
			err = errors.New("executor returned no result")
		}
		return nil, err
	}
	if err == nil && res.Failed == "" {
		fmt.Fprintln(st.Out, summary(res))
		return res, nil
	}
	reportFailure(st.Err, res, err, a.NoRollback, ctx.Err() != nil)
	return res, exitStatus{code: 1, msg: failureMessage(res, err, ctx.Err() != nil)}
}

// summary is the closing line of a successful apply.
func summary(r *executor.Result) string {
	var extra []string
	if r.Started > 0 {
		extra = append(extra, fmt.Sprintf("%d started", r.Started))
	}
	if r.Stopped > 0 {
		extra = append(extra, fmt.Sprintf("%d stopped", r.Stopped))
	}
	if r.Replaced > 0 {
		extra = append([]string{fmt.Sprintf("%d replaced", r.Replaced)}, extra...)
	}
	s := fmt.Sprintf("Done in %s: %d created, %d updated, %d deleted", fmtElapsed(r.Wall), r.Created, r.Updated, r.Deleted)
	if len(extra) > 0 {
		s += ", " + strings.Join(extra, ", ")
	}
	return s + "."
}

// reportFailure prints what failed, why, and each rollback step.
func reportFailure(w io.Writer, r *executor.Result, err error, noRollback, interrupted bool) {
	switch {
	case interrupted:
		fmt.Fprintln(w, "\nInterrupted.")
	case r.Failed != "":
		fmt.Fprintf(w, "\nFailed: %s\n", r.Failed)
	default:
		fmt.Fprintln(w, "\nFailed.")
	}
	cause := r.Cause
	if cause == nil {
		cause = err
	}
	if cause != nil {
		fmt.Fprintf(w, "Cause: %s\n", indentRest(cause.Error(), "       "))
	}
	switch {
	case noRollback:
		fmt.Fprintln(w, "Rollback: skipped (--no-rollback): the partial state is left for debugging; `berth up` converges it, `berth down` removes it.")
	case len(r.Rollback) == 0:
		fmt.Fprintln(w, "Rollback: nothing to undo.")
	default:
		fmt.Fprintln(w, "Rollback:")
		for _, step := range r.Rollback {
			fmt.Fprintf(w, "  %s\n", rollbackLine(step))
		}
	}
}

// failureMessage is the one-line error main prints last.
func failureMessage(r *executor.Result, err error, interrupted bool) string {
	what := "apply failed"
	if interrupted {
		what = "apply interrupted"
	}
	if r.Failed != "" {
		what += ": " + r.Failed
	}
	cause := r.Cause
	if cause == nil {
		cause = err
	}
	if cause != nil && !interrupted {
		what += ": " + oneLine(cause.Error())
	}
	return what
}

func indentRest(s, indent string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+indent)
}

// isDestructive reports whether applying p deletes or replaces anything:
// only then does `up` ask for confirmation on a terminal.
func isDestructive(p *planner.Plan) bool {
	for _, n := range p.Nodes {
		if n.Action == planner.Delete || n.Action == planner.Replace {
			return true
		}
	}
	return false
}

// confirm asks a yes/no question on the terminal; only y or yes proceeds.
func confirm(st streams, question string) bool {
	fmt.Fprintf(st.Out, "%s [y/N] ", question)
	line, _ := bufio.NewReader(st.In).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

// waitAllHealthy re-observes the stack and waits, concurrently, until
// every instance of the file with a healthcheck passes it (`up --wait`).
func waitAllHealthy(ctx context.Context, s *session, open driverOpener, st streams) error {
	fresh := newSession(s.stack, s.stateDir)
	if err := fresh.observe(ctx, open, fresh.fileKeys(), nil); err != nil {
		return err
	}
	type target struct {
		name string
		ex   drivers.Execer
		obj  drivers.ObservedInstance
	}
	var targets []target
	var errs []error
	for _, o := range fresh.owned() {
		inst := s.stack.Instances[o.Owner.Instance]
		if inst == nil {
			continue
		}
		if _, ok := healthArgv(inst.Healthcheck); !ok {
			continue
		}
		if o.State != drivers.StateRunning {
			errs = append(errs, fmt.Errorf("%s: %s, not running", inst.Name, o.State))
			continue
		}
		ex, ok := fresh.drivers[driverKey{o.Ref.Backend, o.Ref.Provider}].(drivers.Execer)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: backend %s cannot run health checks", inst.Name, o.Ref.Backend))
			continue
		}
		targets = append(targets, target{inst.Name, ex, o})
	}
	if len(targets) > 0 {
		fmt.Fprintf(st.Out, "Waiting for %d health check(s)...\n", len(targets))
	}
	results := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := waitHealthy(ctx, t.ex, t.obj.Ref, s.stack.Instances[t.name].Healthcheck); err != nil {
				results[i] = fmt.Errorf("%s: %w", t.name, err)
				return
			}
		}()
	}
	wg.Wait()
	errs = append(errs, results...)
	var msgs []string
	for _, e := range errs {
		if e != nil {
			msgs = append(msgs, e.Error())
		}
	}
	if len(msgs) > 0 {
		sort.Strings(msgs)
		return fmt.Errorf("--wait: not healthy:\n  %s", strings.Join(msgs, "\n  "))
	}
	if len(targets) > 0 {
		fmt.Fprintln(st.Out, "All health checks pass.")
	}
	return nil
}
