package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/urfave/cli/v3"
)

// validateOptions are the inputs of `berth validate`.
type validateOptions struct {
	Global *globalOptions
	Out    io.Writer // the one-line summary
	Err    io.Writer // warnings
}

func newValidateCommand(g *globalOptions) *cli.Command {
	return &cli.Command{
		Name:  "validate",
		Usage: "check the stack file and print a one-line summary",
		UsageText: `berth validate [-f FILE]

Examples:
   berth validate                      # berth.yaml (or berth.yml) in this directory
   berth -f examples/quickstart.yaml validate
   BERTH_FILE=stack.yaml berth validate`,
		Description: "Loads the stack file the way every command does: interpolates ${VAR} from the\n" +
			"environment and .env, checks it against the JSON Schema (berth schema) and runs the\n" +
			"semantic checks (dependencies, cycles, providers, VMIDs, names). Every problem is\n" +
			"printed at once as FILE:LINE:COL: PATH: MESSAGE and the exit status is 1.\n" +
			"Nothing is contacted or changed.",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if err := noArgs(cmd); err != nil {
				return err
			}
			return runValidate(ctx, validateOptions{Global: g, Out: cmd.Root().Writer, Err: cmd.Root().ErrWriter})
		},
	}
}

func runValidate(ctx context.Context, o validateOptions) error {
	st, err := loadStack(o.Global)
	if err != nil {
		return err
	}
	printWarnings(o.Err, st)
	counts := map[string]int{}
	for _, in := range st.Instances {
		counts[in.Backend]++
	}
	backends := make([]string, 0, len(counts))
	for b := range counts {
		backends = append(backends, b)
	}
	sort.Slice(backends, func(i, j int) bool {
		if counts[backends[i]] != counts[backends[j]] {
			return counts[backends[i]] > counts[backends[j]]
		}
		return backends[i] < backends[j]
	})
	parts := make([]string, len(backends))
	for i, b := range backends {
		parts[i] = fmt.Sprintf("%s %d", b, counts[b])
	}
	by := ""
	if len(parts) > 0 {
		by = " (" + strings.Join(parts, ", ") + ")"
	}
	_, err = fmt.Fprintf(o.Out, "%s: stack %s is valid: %s%s, %s\n", st.File, st.Name,
		plural(len(st.Instances), "instance"), by, plural(len(st.Providers), "provider"))
	return err
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
