package main

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/planner"
	"github.com/urfave/cli/v3"
)

// planOptions are `berth plan`'s options.
type planOptions struct {
	g          *globalOptions
	st         streams
	openDriver driverOpener
	now        func() time.Time

	JSON             bool   // --json: the versioned JSON plan instead of the human view
	Out              string // --out FILE: save the plan for `berth up FILE`
	DetailedExitcode bool   // --detailed-exitcode: 0 no changes, 2 changes, 1 error
	KeepOrphans      bool   // --keep-orphans: plan no deletes of orphans
}

func newPlanCommand(g *globalOptions) *cli.Command {
	o := &planOptions{g: g, openDriver: openDriver, now: time.Now}
	return &cli.Command{
		Name:  "plan",
		Usage: "show what `berth up` would change, without changing anything",
		UsageText: `berth plan [--json] [--out FILE] [--detailed-exitcode] [--keep-orphans]

Examples:
   berth plan                              # human view with field diffs and reasons
   berth plan --json | jq '.nodes[].actions'
   berth plan --out release.plan           # then: berth up release.plan
   berth plan --detailed-exitcode          # exit 0 no changes, 2 changes, 1 error`,
		Description: "Observes every backend the stack uses once, compares the live objects with the stack file\n" +
			"and prints the actions `berth up` would take, with field-level diffs and reasons.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the versioned JSON plan", Destination: &o.JSON},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "save the plan to `FILE` for `berth up FILE`", Destination: &o.Out},
			&cli.BoolFlag{Name: "detailed-exitcode", Usage: "exit 0 when there are no changes, 2 when there are, 1 on error", Destination: &o.DetailedExitcode},
			keepOrphansFlag(&o.KeepOrphans),
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if err := noArgs(cmd); err != nil {
				return err
			}
			o.st = commandStreams(cmd)
			return runPlan(ctx, o)
		},
	}
}

// runPlan observes, plans and prints; it changes nothing.
func runPlan(ctx context.Context, o *planOptions) error {
	s, err := loadObserved(ctx, o.g, o.openDriver, o.st.Err)
	if err != nil {
		return err
	}
	p, err := s.plan(planner.ModeUp, o.KeepOrphans)
	if err != nil {
		return err
	}
	if o.JSON {
		if err := planner.WriteJSON(o.st.Out, p); err != nil {
			return err
		}
	} else if err := planner.RenderText(o.st.Out, p, o.st.Color); err != nil {
		return err
	}
	if o.Out != "" {
		sp, err := newSavedPlan(s, p, o.KeepOrphans, o.now())
		if err != nil {
			return err
		}
		if err := writeSavedPlan(o.Out, sp); err != nil {
			return err
		}
		note := o.st.Out
		if o.JSON {
			note = o.st.Err // keep stdout pure JSON
		}
		fmt.Fprintf(note, "\nSaved the plan to %s. Apply exactly this plan with: berth up %s\n", o.Out, o.Out)
	}
	if o.DetailedExitcode && p.HasChanges() {
		return exitStatus{code: 2}
	}
	return nil
}
