package executor

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/manifest"
)

// Compose's healthcheck defaults, used when the loaded stack left a field
// zero.
const (
	defaultHealthInterval = 30 * time.Second
	defaultHealthTimeout  = 30 * time.Second
	defaultHealthRetries  = 3
)

// HealthArgv turns a healthcheck test into the argv to exec: ["CMD", a...]
// runs a... directly, ["CMD-SHELL", script] (or a bare string list not
// starting with CMD) runs /bin/sh -c script. It returns nil for ["NONE"],
// an empty test or a disabled check.
func HealthArgv(hc *manifest.Healthcheck) []string {
	if hc == nil || hc.Disable || len(hc.Test) == 0 {
		return nil
	}
	switch hc.Test[0] {
	case "NONE":
		return nil
	case "CMD":
		if len(hc.Test) < 2 {
			return nil
		}
		return append([]string(nil), hc.Test[1:]...)
	case "CMD-SHELL":
		if len(hc.Test) < 2 {
			return nil
		}
		return []string{"/bin/sh", "-c", hc.Test[1]}
	}
	// Compose's string form: `test: curl -f http://localhost` is CMD-SHELL.
	script := hc.Test[0]
	for _, s := range hc.Test[1:] {
		script += " " + s
	}
	return []string{"/bin/sh", "-c", script}
}

// healthcheckOf finds an instance's healthcheck in the stack file, else in
// the node's desired instance.
func (a *applier) healthcheckOf(n *rnode) *manifest.Healthcheck {
	if a.o.Stack != nil {
		if inst, ok := a.o.Stack.Instances[n.Instance]; ok && inst.Healthcheck != nil {
			return inst.Healthcheck
		}
	}
	if n.Desired != nil {
		return n.Desired.Healthcheck
	}
	return nil
}

// waitHealthy probes the node's instance until its health check passes,
// as Compose does: a probe every interval, each bounded by timeout;
// failures during start_period do not count; retries consecutive counted
// failures make it unhealthy. The first probe runs at once.
func (a *applier) waitHealthy(ctx context.Context, n *rnode) error {
	hc := a.healthcheckOf(n)
	argv := HealthArgv(hc)
	if argv == nil {
		return fmt.Errorf("a dependent waits for %s to be healthy, but it has no healthcheck", n.Instance)
	}
	ex, ok := n.drv.(drivers.Execer)
	if !ok {
		return fmt.Errorf("health check of %s: backend %s cannot exec: %w", n.Instance, n.Backend, drivers.ErrUnsupported)
	}
	interval, timeout, retries := hc.Interval.D(), hc.Timeout.D(), hc.Retries
	if interval <= 0 {
		interval = defaultHealthInterval
	}
	if timeout <= 0 {
		timeout = defaultHealthTimeout
	}
	if retries <= 0 {
		retries = defaultHealthRetries
	}
	began := time.Now()
	failures := 0
	for probe := 1; ; probe++ {
		if a.isAborted() {
			return errAborted
		}
		var code int
		err := a.slot(ctx, func() error {
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			var err error
			code, err = ex.Exec(pctx, n.ref, drivers.ExecRequest{Argv: argv})
			if err == nil && pctx.Err() != nil {
				err = pctx.Err()
			}
			return err
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil && code == 0 {
			a.emit(n, PhaseHealthWait, nil, fmt.Sprintf("healthy (probe %d)", probe))
			return nil
		}
		last := fmt.Sprintf("exit %d", code)
		if err != nil {
			last = err.Error()
		}
		inStart := time.Since(began) < hc.StartPeriod.D()
		if !inStart {
			failures++
		}
		a.emit(n, PhaseHealthWait, nil, fmt.Sprintf("probe %d: %s (%d/%d failures)", probe, last, failures, retries))
		if failures >= retries {
			return fmt.Errorf("%s is unhealthy: health check failed %d times in a row (last: %s)", n.Instance, failures, last)
		}
		if err := a.sleep(ctx, interval); err != nil {
			return err
		}
	}
}

// waitCompleted observes the node's one-shot instance until it exits:
// exit 0 passes (`condition: completed`), anything else fails. A stopped
// object that reports no exit code counts as completed.
func (a *applier) waitCompleted(ctx context.Context, n *rnode) error {
	for {
		if a.isAborted() {
			return errAborted
		}
		var obs []drivers.ObservedInstance
		err := a.slot(ctx, func() error {
			var err error
			obs, err = n.drv.Observe(ctx, a.plan.Stack)
			return err
		})
		if err != nil {
			return fmt.Errorf("waiting for %s to complete: observe: %w", n.Instance, err)
		}
		var o *drivers.ObservedInstance
		for i := range obs {
			if obs[i].Ref.Name == n.ref.Name && (n.ref.ID == "" || obs[i].Ref.ID == "" || obs[i].Ref.ID == n.ref.ID) {
				o = &obs[i]
				break
			}
		}
		switch {
		case o == nil:
			return fmt.Errorf("waiting for %s to complete: %s vanished", n.Instance, n.ref.Name)
		case o.State == drivers.StateExited || o.State == drivers.StateStopped:
			if o.ExitCode == nil || *o.ExitCode == 0 {
				a.emit(n, PhaseHealthWait, nil, "completed")
				return nil
			}
			return fmt.Errorf("%s did not complete successfully: exited with code %d", n.Instance, *o.ExitCode)
		}
		if err := a.sleep(ctx, a.o.PollInterval); err != nil {
			return err
		}
	}
}

// sleep waits d, returning early when ctx ends or the apply aborts.
func (a *applier) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-a.abortCh:
		return errAborted
	}
}
