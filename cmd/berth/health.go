package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/manifest"
)

// Compose's healthcheck defaults, for stacks built without manifest.Load.
const (
	defaultHealthInterval = 30 * time.Second
	defaultHealthTimeout  = 30 * time.Second
	defaultHealthRetries  = 3
)

// healthArgv is the command a healthcheck runs (the executor's reading
// of it, so `ps` probes exactly what `up` gates on), or false when the
// instance has no enabled healthcheck.
func healthArgv(hc *manifest.Healthcheck) ([]string, bool) {
	argv := executor.HealthArgv(hc)
	return argv, len(argv) > 0
}

func healthTimeout(hc *manifest.Healthcheck) time.Duration {
	if hc.Timeout > 0 {
		return hc.Timeout.D()
	}
	return defaultHealthTimeout
}

// probeHealth runs one health check bounded by its timeout. It returns
// "healthy" or "unhealthy" and, for an unhealthy probe, why.
func probeHealth(ctx context.Context, ex drivers.Execer, ref drivers.ObjectRef, hc *manifest.Healthcheck) (healthy bool, why string) {
	argv, ok := healthArgv(hc)
	if !ok {
		return false, "no healthcheck"
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout(hc))
	defer cancel()
	var out bytes.Buffer
	code, err := ex.Exec(ctx, ref, drivers.ExecRequest{Argv: argv, Stdout: &out, Stderr: &out})
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return false, fmt.Sprintf("health check timed out after %s", healthTimeout(hc))
	case err != nil:
		return false, err.Error()
	case code != 0:
		msg := strings.TrimSpace(out.String())
		if msg != "" {
			return false, fmt.Sprintf("health check exited %d: %s", code, oneLine(msg))
		}
		return false, fmt.Sprintf("health check exited %d", code)
	}
	return true, ""
}

// waitHealthy probes until the check passes, as Compose does: failures in
// the start period do not count; after it, `retries` consecutive failures
// make the instance unhealthy.
func waitHealthy(ctx context.Context, ex drivers.Execer, ref drivers.ObjectRef, hc *manifest.Healthcheck) error {
	interval := defaultHealthInterval
	if hc.Interval > 0 {
		interval = hc.Interval.D()
	}
	retries := defaultHealthRetries
	if hc.Retries > 0 {
		retries = hc.Retries
	}
	startEnd := time.Now().Add(hc.StartPeriod.D())
	failures := 0
	for {
		ok, why := probeHealth(ctx, ex, ref, hc)
		if ok {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(startEnd) {
			failures++
			if failures >= retries {
				return fmt.Errorf("unhealthy after %d checks: %s", failures, why)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
