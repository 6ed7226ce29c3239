package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/berth-dev/berth/drivers"
	"github.com/urfave/cli/v3"
)

// logsOptions are `berth logs`'s options.
type logsOptions struct {
	g          *globalOptions
	st         streams
	openDriver driverOpener

	Instance string // NAME
	Follow   bool   // -f/--follow
}

func newLogsCommand(g *globalOptions) *cli.Command {
	o := &logsOptions{g: g, openDriver: openDriver}
	return &cli.Command{
		Name:      "logs",
		Usage:     "print an instance's console/stdout log",
		ArgsUsage: "NAME",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new output until interrupted", Destination: &o.Follow},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 1 {
				return fmt.Errorf("usage: berth logs [-f] NAME")
			}
			o.Instance = cmd.Args().First()
			o.st = detectStreams(os.Stdin, cmd.Root().Writer, cmd.Root().ErrWriter)
			return runLogs(ctx, o)
		},
	}
}

func runLogs(ctx context.Context, o *logsOptions) error {
	d, obj, err := findInstanceObject(ctx, o.g, o.openDriver, o.Instance)
	if err != nil {
		return err
	}
	lg, ok := d.(drivers.Logger)
	if !ok {
		return fmt.Errorf("logs %s: backend %s keeps no logs berth can read", o.Instance, obj.Ref.Backend)
	}
	err = lg.Logs(ctx, obj.Ref, o.Follow, o.st.Out)
	if o.Follow && errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // Ctrl-C ends a follow normally
	}
	if err != nil {
		return fmt.Errorf("logs %s: %w", o.Instance, err)
	}
	return nil
}

func sortStrings(s []string) { sort.Strings(s) }
