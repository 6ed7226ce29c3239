package executor

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/berth-dev/berth/drivers/memdriver"
	"github.com/berth-dev/berth/manifest"
	"github.com/berth-dev/berth/planner"
)

// benchOverhead applies 200 independent creates whose driver create takes
// 20 ms, at Parallel 10: the ideal wall time is 200*20ms/10 = 0.4 s. Each
// benchmark iteration runs the apply five times (the machine is shared and
// noisy) and reports the median wall/ideal (target <= 1.1), plus the best
// and worst runs.
func benchOverhead(b *testing.B, journal bool) {
	const n, lat, par, runs = 200, 20 * time.Millisecond, 10, 5
	ideal := time.Duration(n/par) * lat
	var insts []*manifest.Instance
	for i := range n {
		insts = append(insts, inst(fmt.Sprintf("i%03d", i)))
	}
	st := mkStack(insts...)
	var ratios []float64
	for b.Loop() {
		for range runs {
			b.StopTimer()
			d := newMem()
			d.SetLatency(memdriver.OpCreate, lat)
			p := mkPlan(b, st, d, planner.ModeUp)
			o := opts(st, d, par)
			if journal {
				j, err := OpenJournal(b.TempDir(), testStack)
				if err != nil {
					b.Fatal(err)
				}
				defer j.Close()
				o.Journal = j
			}
			b.StartTimer()
			res, err := Apply(context.Background(), p, o)
			if err != nil || res.Created != n {
				b.Fatalf("apply: %v (created %d)", err, res.Created)
			}
			ratios = append(ratios, float64(res.Wall)/float64(ideal))
		}
	}
	sort.Float64s(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "wall/ideal")
	b.ReportMetric(ratios[0], "best-wall/ideal")
	b.ReportMetric(ratios[len(ratios)-1], "worst-wall/ideal")
}

func BenchmarkExecutorOverhead(b *testing.B) { benchOverhead(b, false) }

// The same with the fsynced journal on, for information.
func BenchmarkExecutorOverheadJournal(b *testing.B) { benchOverhead(b, true) }
