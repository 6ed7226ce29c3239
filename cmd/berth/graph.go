package main

import (
	"context"

	"github.com/berth-dev/berth/planner"
	"github.com/urfave/cli/v3"
)

// graphOptions are `berth graph`'s options.
type graphOptions struct {
	g          *globalOptions
	st         streams
	openDriver driverOpener

	KeepOrphans bool // --keep-orphans, as for up
	Down        bool // --down: the graph of `berth down`
}

func newGraphCommand(g *globalOptions) *cli.Command {
	o := &graphOptions{g: g, openDriver: openDriver}
	return &cli.Command{
		Name:  "graph",
		Usage: "print the action graph of `berth up` (or `berth down`) as Graphviz DOT",
		UsageText: `berth graph [--keep-orphans] [--down]

Examples:
   berth graph | dot -Tsvg > plan.svg
   berth graph --down                      # the order berth down deletes in`,
		Description: "Render it with: berth graph | dot -Tsvg > plan.svg",
		Flags: []cli.Flag{
			keepOrphansFlag(&o.KeepOrphans),
			&cli.BoolFlag{Name: "down", Usage: "graph the plan of berth down instead", Destination: &o.Down},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if err := noArgs(cmd); err != nil {
				return err
			}
			o.st = commandStreams(cmd)
			return runGraph(ctx, o)
		},
	}
}

func runGraph(ctx context.Context, o *graphOptions) error {
	s, err := loadObserved(ctx, o.g, o.openDriver, o.st.Err)
	if err != nil {
		return err
	}
	mode := planner.ModeUp
	if o.Down {
		mode = planner.ModeDown
	}
	p, err := s.plan(mode, o.KeepOrphans)
	if err != nil {
		return err
	}
	return planner.WriteDOT(o.st.Out, p)
}
