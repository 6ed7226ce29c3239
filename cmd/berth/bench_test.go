package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/planner"
)

// BenchmarkUpNoOp200 measures what `berth up` costs around the planner on
// a converged 200-instance stack (load the file, lock, read the journal,
// observe once per backend, plan, print "No changes."): it reports the
// whole command's time per run and its ratio to planner.Compute alone.
func BenchmarkUpNoOp200(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("name: demo\ninstances:\n")
	for i := range 200 {
		fmt.Fprintf(&sb, "  i%03d:\n    backend: lxc\n    template: {type: busybox}\n    memory: 64M\n", i)
		if i > 0 {
			fmt.Fprintf(&sb, "    depends_on: [i%03d]\n", i-1)
		}
	}
	e := newCmdEnv(b, sb.String())
	if err := e.up(func(o *upOptions) { o.Parallel = 16 }); err != nil {
		b.Fatal(err)
	}
	s, err := loadSession(e.g)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.observeAll(context.Background(), e.open); err != nil {
		b.Fatal(err)
	}

	const rounds = 5
	var cmd, plan time.Duration
	b.ResetTimer()
	for range b.N {
		for range rounds {
			start := time.Now()
			if err := e.up(nil); err != nil {
				b.Fatal(err)
			}
			cmd += time.Since(start)
			start = time.Now()
			p, err := s.plan(planner.ModeUp, false)
			if err != nil || p.HasChanges() {
				b.Fatalf("plan: %v (changes %t)", err, p != nil && p.HasChanges())
			}
			plan += time.Since(start)
		}
	}
	b.ReportMetric(float64(cmd.Milliseconds())/float64(b.N*rounds), "ms/up")
	b.ReportMetric(float64(cmd)/float64(plan), "up/plan-ratio")
}
