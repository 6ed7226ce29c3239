package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/berth-dev/berth/drivers"
	"github.com/urfave/cli/v3"
)

// logsOptions are `berth logs`'s options.
type logsOptions struct {
	g          *globalOptions
	st         streams
	openDriver driverOpener

	Instances []string // NAME...; none = every instance of the file
	Follow    bool     // -f/--follow
}

func newLogsCommand(g *globalOptions) *cli.Command {
	o := &logsOptions{g: g, openDriver: openDriver}
	return &cli.Command{
		Name:  "logs",
		Usage: "print instances' console/stdout logs",
		UsageText: `berth logs [-f] [NAME...]

Examples:
   berth logs web
   berth logs -f web                       # follow
   berth logs                              # every instance, prefixed with its name`,
		ArgsUsage: "[NAME...]",
		Description: "With one NAME, prints its log as it is; with several or none (every instance),\n" +
			"each line is prefixed with the instance name.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new output until interrupted", Destination: &o.Follow},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			o.Instances = cmd.Args().Slice()
			o.st = commandStreams(cmd)
			return runLogs(ctx, o)
		},
	}
}

func runLogs(ctx context.Context, o *logsOptions) error {
	s, err := loadSession(o.g)
	if err != nil {
		return err
	}
	names := o.Instances
	explicit := len(names) > 0
	if !explicit {
		names = instanceNames(s)
	}
	targets, err := s.instanceObjects(ctx, o.openDriver, names, explicit)
	if err != nil {
		return err
	}
	s.printWarnings(o.st.Err)
	if len(targets) == 1 && explicit {
		return targets[0].logs(ctx, o.Follow, o.st.Out)
	}
	width := 0
	for _, t := range targets {
		width = max(width, len(t.name))
	}
	var mu sync.Mutex
	errs := make([]error, len(targets))
	if !o.Follow {
		for i, t := range targets {
			w := &prefixWriter{mu: &mu, w: o.st.Out, prefix: fmt.Sprintf("%-*s | ", width, t.name)}
			errs[i] = t.logs(ctx, false, w)
			w.flush()
		}
		return errors.Join(errs...)
	}
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &prefixWriter{mu: &mu, w: o.st.Out, prefix: fmt.Sprintf("%-*s | ", width, t.name)}
			errs[i] = t.logs(ctx, true, w)
			w.flush()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// instanceTarget is the live object of one instance and its driver.
type instanceTarget struct {
	name string
	d    drivers.Driver
	obj  drivers.ObservedInstance
}

func (t instanceTarget) logs(ctx context.Context, follow bool, w io.Writer) error {
	lg, ok := t.d.(drivers.Logger)
	if !ok {
		return fmt.Errorf("logs %s: backend %s keeps no logs berth can read", t.name, t.obj.Ref.Backend)
	}
	err := lg.Logs(ctx, t.obj.Ref, follow, w)
	if follow && errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // Ctrl-C ends a follow normally
	}
	if err != nil {
		return fmt.Errorf("logs %s: %w", t.name, err)
	}
	return nil
}

// instanceObjects observes the drivers of the named instances (once each)
// and returns each instance's object. An unknown name is an error; an
// instance with no object yet is an error when strict, else a warning.
func (s *session) instanceObjects(ctx context.Context, open driverOpener, names []string, strict bool) ([]instanceTarget, error) {
	seen := map[driverKey]bool{}
	var keys []driverKey
	for _, n := range names {
		inst := s.stack.Instances[n]
		if inst == nil {
			return nil, fmt.Errorf("no instance %q in %s (instances: %s)", n, s.stack.File, strings.Join(instanceNames(s), ", "))
		}
		k := driverKey{inst.Backend, inst.Provider}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if err := s.observe(ctx, open, keys, nil); err != nil {
		return nil, err
	}
	byInstance := map[string]drivers.ObservedInstance{}
	for _, obj := range s.owned() {
		byInstance[obj.Owner.Instance] = obj
	}
	var out []instanceTarget
	for _, n := range names {
		inst := s.stack.Instances[n]
		obj, ok := byInstance[n]
		if !ok {
			msg := fmt.Sprintf("instance %s has no %s object yet (create it with: berth up)", n, inst.Backend)
			if strict {
				return nil, errors.New(msg)
			}
			s.warnings = append(s.warnings, msg)
			continue
		}
		out = append(out, instanceTarget{name: n, d: s.drivers[driverKey{inst.Backend, inst.Provider}], obj: obj})
	}
	return out, nil
}

func instanceNames(s *session) []string {
	return slices.Sorted(maps.Keys(s.stack.Instances))
}

// prefixWriter writes whole lines, each behind a prefix, under a mutex
// shared by the instances' writers so lines never interleave.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		p.mu.Lock()
		_, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.mu.Unlock()
		p.buf = p.buf[i+1:]
		if err != nil {
			return len(b), err
		}
	}
}

// flush writes a last line that had no newline.
func (p *prefixWriter) flush() {
	if len(p.buf) > 0 {
		p.mu.Lock()
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf)
		p.mu.Unlock()
		p.buf = nil
	}
}
