package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/berth-dev/berth/manifest"
	"github.com/berth-dev/berth/planner"
	"github.com/urfave/cli/v3"
)

// downOptions are `berth down`'s options.
type downOptions struct {
	g          *globalOptions
	st         streams
	openDriver driverOpener

	applySettings      // --parallel, --no-rollback, --progress
	Yes           bool // --yes: never ask
}

func newDownCommand(g *globalOptions) *cli.Command {
	o := &downOptions{g: g, openDriver: openDriver}
	return &cli.Command{
		Name:  "down",
		Usage: "stop and delete every object the stack owns, in reverse dependency order",
		UsageText: `berth down [--yes] [--parallel N] [--no-rollback] [--progress MODE]

Examples:
   berth down                              # delete everything the stack owns
   berth -p demo down --yes                # by stack name, even without the stack file`,
		Description: "Deletes every object berth made for this stack, including orphans the stack file no longer\n" +
			"lists, dependents before their dependencies. Objects berth does not own are never touched.\n" +
			"On a terminal it asks first unless --yes.",
		Flags: []cli.Flag{
			yesFlag(&o.Yes),
			parallelFlag(&o.Parallel),
			&cli.BoolFlag{Name: "no-rollback", Usage: "on failure, do not recreate what was already deleted", Destination: &o.NoRollback},
			progressFlag(&o.Progress),
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if err := noArgs(cmd); err != nil {
				return err
			}
			o.st = commandStreams(cmd)
			return runDown(ctx, o)
		},
	}
}

// runDown removes everything the stack owns.
func runDown(ctx context.Context, o *downOptions) error {
	settings := o.applySettings
	if err := settings.validate(); err != nil {
		return err
	}
	s, err := loadSession(o.g)
	if err != nil {
		if s = filelessSession(o.g, err); s == nil {
			return err
		}
		fmt.Fprintf(o.st.Err, "warning: no stack file (%v): removing what stack %s left on the backends recorded in %s\n",
			err, s.stack.Name, recordedKeysPath(s.stateDir, s.stack.Name))
	}
	human := settings.human(o.st)
	p, journal, release, err := lockedPlan(ctx, s, o.openDriver, o.st, planner.ModeDown, false)
	if err != nil {
		return err
	}
	defer release()
	apply, err := presentPlan(p, o.st, human, !o.Yes, fmt.Sprintf("Delete every object of stack %s?", s.stack.Name), "down")
	if err != nil {
		return err
	}
	if !apply {
		return s.recordKeys(false)
	}
	if _, err := applyPlan(ctx, s, p, settings, journal, o.st); err != nil {
		return err
	}
	// Everything is gone: forget the backends the stack used, and the
	// journal of this (completed) run, so down leaves no state behind.
	journal.Close()
	if err := os.Remove(journal.Path()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s.observed = nil
	return s.recordKeys(false)
}

// filelessSession lets `berth -p NAME down` remove a stack whose file is
// gone, as `docker compose -p NAME down` does: with no stack file but a
// project name, the session has no instances and finds the stack's
// objects on the backends an earlier run recorded. It returns nil when
// that does not apply (a file exists but is invalid, or no -p).
func filelessSession(g *globalOptions, loadErr error) *session {
	if g.ProjectName == "" {
		return nil
	}
	if g.File != "" {
		if _, err := os.Stat(g.File); !errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	} else if wd, err := os.Getwd(); err != nil {
		return nil
	} else if _, err := manifest.FindFile(wd); err == nil {
		return nil
	}
	return newSession(&manifest.Stack{Name: g.ProjectName, Instances: map[string]*manifest.Instance{}}, stateDirOf(g))
}
