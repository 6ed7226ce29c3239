package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/drivers"
	"github.com/urfave/cli/v3"
)

// execOptions are `berth exec`'s options.
type execOptions struct {
	g          *globalOptions
	st         streams
	openDriver driverOpener

	Instance string   // NAME
	Argv     []string // CMD...
	Env      []string // -e KEY=VALUE
	NoStdin  bool     // -T/--no-stdin: do not pass stdin
}

func newExecCommand(g *globalOptions) *cli.Command {
	o := &execOptions{g: g, openDriver: openDriver}
	stop := 1
	return &cli.Command{
		Name:  "exec",
		Usage: "run a command in a running instance; its exit status is berth's",
		UsageText: `berth exec [-e KEY=VALUE]... [-T] NAME [--] CMD [ARGS...]

Examples:
   berth exec web -- cat /etc/hostname
   berth exec db sh -c 'echo $HOSTNAME'    # exit status is the command's`,
		ArgsUsage: "NAME [--] CMD [ARGS...]",
		// Everything after NAME belongs to the command, flags included.
		StopOnNthArg: &stop,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set `KEY=VALUE` in the command's environment (repeatable)", Destination: &o.Env},
			&cli.BoolFlag{Name: "no-stdin", Aliases: []string{"T"}, Usage: "do not pass berth's standard input to the command", Destination: &o.NoStdin},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			args := cmd.Args().Slice()
			if len(args) > 0 {
				o.Instance, args = args[0], args[1:]
			}
			if len(args) > 0 && args[0] == "--" {
				args = args[1:]
			}
			o.Argv = args
			o.st = commandStreams(cmd)
			return runExec(ctx, o)
		},
	}
}

func runExec(ctx context.Context, o *execOptions) error {
	if o.Instance == "" || len(o.Argv) == 0 {
		return fmt.Errorf("usage: berth exec NAME -- CMD [ARGS...]")
	}
	env := map[string]string{}
	for _, kv := range o.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("--env %q: want KEY=VALUE", kv)
		}
		env[k] = v
	}
	d, obj, err := findInstanceObject(ctx, o.g, o.openDriver, o.Instance)
	if err != nil {
		return err
	}
	ex, ok := d.(drivers.Execer)
	if !ok {
		return fmt.Errorf("exec %s: backend %s cannot run commands in instances", o.Instance, obj.Ref.Backend)
	}
	if obj.State != drivers.StateRunning {
		return fmt.Errorf("exec %s: %s is %s, not running (start it with: berth up)", o.Instance, obj.Ref.Name, obj.State)
	}
	req := drivers.ExecRequest{Argv: o.Argv, Stdout: o.st.Out, Stderr: o.st.Err}
	if len(env) > 0 {
		req.Env = env
	}
	if !o.NoStdin && o.st.In != nil {
		req.Stdin = o.st.In
	}
	code, err := ex.Exec(ctx, obj.Ref, req)
	if err != nil {
		return fmt.Errorf("exec %s: %w", o.Instance, err)
	}
	if code != 0 {
		return exitStatus{code: code}
	}
	return nil
}

// findInstanceObject opens only the driver of one instance, observes it
// once and returns the object the stack owns for that instance.
func findInstanceObject(ctx context.Context, g *globalOptions, open driverOpener, name string) (drivers.Driver, drivers.ObservedInstance, error) {
	s, err := loadSession(g)
	if err != nil {
		return nil, drivers.ObservedInstance{}, err
	}
	targets, err := s.instanceObjects(ctx, open, []string{name}, true)
	if err != nil {
		return nil, drivers.ObservedInstance{}, err
	}
	return targets[0].d, targets[0].obj, nil
}
