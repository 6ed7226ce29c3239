package main

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/planner"
	"github.com/urfave/cli/v3"
)

// upOptions are `berth up`'s options.
type upOptions struct {
	g          *globalOptions
	st         streams
	openDriver driverOpener

	applySettings      // --parallel, --no-rollback (leave a failed apply's partial state), --progress
	Yes           bool // --yes: never ask
	KeepOrphans   bool // --keep-orphans: do not delete objects the file no longer lists
	Wait          bool // --wait: return once every health check passes
	// WaitTimeout bounds --wait (0: no bound beyond the checks' own retries).
	WaitTimeout time.Duration
	PlanFile    string // optional saved plan (`berth plan --out`) to apply
}

func newUpCommand(g *globalOptions) *cli.Command {
	o := &upOptions{g: g, openDriver: openDriver}
	return &cli.Command{
		Name:  "up",
		Usage: "create, update, start and delete objects until the live state matches the stack file",
		UsageText: `berth up [--yes] [--parallel N] [--no-rollback] [--keep-orphans] [--wait] [--wait-timeout DURATION] [--progress MODE] [PLANFILE]

Examples:
   berth up                                # plan, then apply with rollback on failure
   berth up --yes --parallel 4 --wait      # no prompt, 4 driver calls at once, wait for health
   berth up release.plan                   # apply a saved plan; refused if it is stale
   BERTH_PARALLEL=16 berth up --progress plain`,
		ArgsUsage: "[PLANFILE]",
		Description: "Observes, plans, shows the plan and applies it in parallel, rolling every completed action\n" +
			"back if one fails. On a terminal it asks before a plan that deletes or replaces anything\n" +
			"(--yes skips the question); elsewhere it proceeds, as `docker compose up` does.\n" +
			"With PLANFILE it applies a plan saved by `berth plan --out`, and refuses it when the stack\n" +
			"file or the live state changed since.",
		Flags: []cli.Flag{
			yesFlag(&o.Yes),
			parallelFlag(&o.Parallel),
			&cli.BoolFlag{Name: "no-rollback", Usage: "on failure, leave the partial state for debugging", Destination: &o.NoRollback},
			keepOrphansFlag(&o.KeepOrphans),
			&cli.BoolFlag{Name: "wait", Usage: "return only once every instance's health check passes", Destination: &o.Wait},
			&cli.DurationFlag{Name: "wait-timeout", Usage: "give up --wait after `DURATION` (implies --wait)", Destination: &o.WaitTimeout},
			progressFlag(&o.Progress),
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			switch cmd.Args().Len() {
			case 0:
			case 1:
				o.PlanFile = cmd.Args().First()
			default:
				return fmt.Errorf("up takes at most one argument (a saved plan), got %q", cmd.Args().Slice())
			}
			o.st = commandStreams(cmd)
			return runUp(ctx, o)
		},
	}
}

// runUp converges the live state on the stack file (or applies a saved
// plan).
func runUp(ctx context.Context, o *upOptions) error {
	settings := o.applySettings
	if err := settings.validate(); err != nil {
		return err
	}
	if o.WaitTimeout < 0 {
		return fmt.Errorf("--wait-timeout %s: must not be negative", o.WaitTimeout)
	}
	o.Wait = o.Wait || o.WaitTimeout > 0
	var saved *savedPlan
	if o.PlanFile != "" {
		var err error
		if saved, err = readSavedPlan(o.PlanFile); err != nil {
			return err
		}
	}
	s, err := loadSession(o.g)
	if err != nil {
		return err
	}
	human := settings.human(o.st)
	keepOrphans := o.KeepOrphans
	if saved != nil {
		keepOrphans = saved.KeepOrphans
	}
	p, journal, release, err := lockedPlan(ctx, s, o.openDriver, o.st, planner.ModeUp, keepOrphans)
	if err != nil {
		return err
	}
	defer release()
	if saved != nil {
		if why := saved.staleness(s, p); why != "" {
			return fmt.Errorf("saved plan %s is stale: %s (made %s); nothing was changed. Make a new one with `berth plan --out %s`",
				o.PlanFile, why, saved.Created.Local().Format(time.DateTime), o.PlanFile)
		}
		// The fresh plan is fingerprint-identical to the saved one and
		// carries the desired specs a JSON plan leaves out: apply it.
	}

	apply, err := presentPlan(p, o.st, human, saved == nil && !o.Yes && isDestructive(p), "This plan deletes or replaces objects. Apply it?", "up")
	if err != nil {
		return err
	}
	if apply {
		if err := s.recordKeys(true); err != nil {
			return fmt.Errorf("record backends in %s: %w", s.stateDir, err)
		}
		if _, err := applyPlan(ctx, s, p, settings, journal, o.st); err != nil {
			return err
		}
	}
	if o.Wait {
		return o.waitHealthy(ctx, s, human)
	}
	return nil
}

// waitHealthy is --wait, bounded by --wait-timeout.
func (o *upOptions) waitHealthy(ctx context.Context, s *session, st streams) error {
	if o.WaitTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, o.WaitTimeout, fmt.Errorf("--wait-timeout %s expired", o.WaitTimeout))
		defer cancel()
	}
	err := waitAllHealthy(ctx, s, o.openDriver, st)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: %w", context.Cause(ctx), err)
	}
	return err
}
