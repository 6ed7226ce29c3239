package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/berth-dev/berth/executor"
	"github.com/urfave/cli/v3"
)

// The flags several commands share, defined once so that their names,
// environment variables, defaults and help agree everywhere.

// yesFlag is --yes/-y (up, down).
func yesFlag(dst *bool) cli.Flag {
	return &cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation", Destination: dst}
}

// parallelFlag is --parallel N / BERTH_PARALLEL (up, down); the default is
// the executor's.
func parallelFlag(dst *int) cli.Flag {
	return &cli.IntFlag{Name: "parallel", Usage: "at most `N` driver calls at once", Value: executor.DefaultParallel, Sources: cli.EnvVars("BERTH_PARALLEL"), Destination: dst}
}

// progressFlag is --progress / BERTH_PROGRESS (up, down).
func progressFlag(dst *string) cli.Flag {
	return &cli.StringFlag{Name: "progress", Usage: "progress display: auto, tty, plain or json", Value: progressAuto, Sources: cli.EnvVars("BERTH_PROGRESS"), Destination: dst}
}

// keepOrphansFlag is --keep-orphans / BERTH_KEEP_ORPHANS (plan, up, graph).
func keepOrphansFlag(dst *bool) cli.Flag {
	return &cli.BoolFlag{Name: "keep-orphans", Usage: "leave objects the stack file no longer lists alone", Sources: cli.EnvVars("BERTH_KEEP_ORPHANS"), Destination: dst}
}

// noArgs refuses positional arguments to a command that takes none.
func noArgs(cmd *cli.Command) error {
	if cmd.Args().Len() > 0 {
		hint := ""
		if a := cmd.Args().First(); strings.HasSuffix(a, ".yaml") || strings.HasSuffix(a, ".yml") {
			hint = fmt.Sprintf(" (to use %s as the stack file: berth -f %s %s)", a, a, cmd.Name)
		}
		return fmt.Errorf("%s takes no arguments, got %q%s", cmd.Name, cmd.Args().Slice(), hint)
	}
	return nil
}

// commandStreams are the streams of a command run by the app: the
// process's stdin and the app's writers.
func commandStreams(cmd *cli.Command) streams {
	return detectStreams(os.Stdin, cmd.Root().Writer, cmd.Root().ErrWriter)
}
