package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/urfave/cli/v3"
)

// psOptions are `berth ps`'s options.
type psOptions struct {
	g          *globalOptions
	st         streams
	openDriver driverOpener
	now        func() time.Time

	JSON bool // --json
}

func newPsCommand(g *globalOptions) *cli.Command {
	o := &psOptions{g: g, openDriver: openDriver, now: time.Now}
	return &cli.Command{
		Name:  "ps",
		Usage: "list the stack's objects: instance, backend, state, health, IPs, age",
		UsageText: `berth ps [--json]

Examples:
   berth ps
   berth ps --json | jq -r '.[] | select(.state == "running") | .instance'`,
		Description: "Lists every object the stack owns, including orphans (objects of instances the stack file\n" +
			"no longer lists). HEALTH runs the instance's healthcheck once, bounded by its timeout, when\n" +
			"the object is running; it is \"-\" otherwise.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array", Destination: &o.JSON},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if err := noArgs(cmd); err != nil {
				return err
			}
			o.st = commandStreams(cmd)
			return runPs(ctx, o)
		},
	}
}

// psRow is one line of `berth ps` (and its JSON form).
type psRow struct {
	Instance string        `json:"instance"`
	Backend  string        `json:"backend"`
	Provider string        `json:"provider,omitempty"`
	Name     string        `json:"name"`
	ID       string        `json:"id,omitempty"`
	State    drivers.State `json:"state"`
	ExitCode *int          `json:"exit_code,omitempty"`
	// Health is healthy, unhealthy or "" (no check, not running).
	Health       string    `json:"health,omitempty"`
	HealthDetail string    `json:"health_detail,omitempty"`
	IPs          []string  `json:"ips"`
	Created      time.Time `json:"created,omitzero"`
	AgeSeconds   int64     `json:"age_seconds,omitempty"`
	Orphan       bool      `json:"orphan,omitempty"`
}

func runPs(ctx context.Context, o *psOptions) error {
	s, err := loadObserved(ctx, o.g, o.openDriver, o.st.Err)
	if err != nil {
		return err
	}
	now := o.now()
	owned := s.owned()
	rows := make([]psRow, len(owned))
	var wg sync.WaitGroup
	for i, obj := range owned {
		inst := s.stack.Instances[obj.Owner.Instance]
		r := psRow{Instance: obj.Owner.Instance, Backend: obj.Ref.Backend, Provider: obj.Ref.Provider, Name: obj.Ref.Name,
			ID: obj.Ref.ID, State: obj.State, ExitCode: obj.ExitCode, IPs: obj.IPs, Created: obj.Created, Orphan: inst == nil}
		if r.IPs == nil {
			r.IPs = []string{}
		}
		if !obj.Created.IsZero() {
			r.AgeSeconds = int64(now.Sub(obj.Created) / time.Second)
		}
		rows[i] = r
		if inst == nil || obj.State != drivers.StateRunning {
			continue
		}
		if _, ok := healthArgv(inst.Healthcheck); !ok {
			continue
		}
		ex, ok := s.drivers[driverKey{obj.Ref.Backend, obj.Ref.Provider}].(drivers.Execer)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			healthy, why := probeHealth(ctx, ex, obj.Ref, inst.Healthcheck)
			if healthy {
				rows[i].Health = "healthy"
			} else {
				rows[i].Health, rows[i].HealthDetail = "unhealthy", why
			}
		}()
	}
	wg.Wait()
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Orphan != rows[j].Orphan {
			return !rows[i].Orphan
		}
		return rows[i].Instance < rows[j].Instance
	})
	if o.JSON {
		enc := json.NewEncoder(o.st.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(o.st.Out, "Stack %s has no objects. Create them with: berth up\n", s.stack.Name)
		return nil
	}
	tw := tabwriter.NewWriter(o.st.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tBACKEND\tNAME\tSTATE\tHEALTH\tIPS\tAGE")
	for _, r := range rows {
		inst := r.Instance
		if r.Orphan {
			inst += " (orphan)"
		}
		backend := r.Backend
		if r.Provider != "" {
			backend += "@" + r.Provider
		}
		state := string(r.State)
		if r.ExitCode != nil {
			state = fmt.Sprintf("%s (%d)", state, *r.ExitCode)
		}
		ips := strings.Join(r.IPs, ",")
		health, age := dash(r.Health), "-"
		if ips == "" {
			ips = "-"
		}
		if !r.Created.IsZero() {
			age = fmtAge(now.Sub(r.Created))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", inst, backend, r.Name, state, health, ips, age)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fmtAge renders an object's age coarsely: 42s, 5m, 3h, 2d.
func fmtAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
