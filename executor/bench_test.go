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

// BenchmarkExecutorOverhead applies 200 independent creates whose driver
// create takes 20 ms, at Parallel 10: the ideal wall time is
// 200*20ms/10 = 0.4 s (target: within 1.1x). Each iteration runs seven
// applies without a journal and seven with the fsynced apply journal on
// (as `berth up` runs), interleaved so that both see the same load on a
// shared, noisy machine, and reports the medians:
//
//   - wall/ideal: without the journal;
//   - journal-wall/ideal: with the journal;
//   - journal/no-journal: the median of the ratio of each journaled apply
//     to the unjournaled one run just before it (the journal's own cost).
func BenchmarkExecutorOverhead(b *testing.B) {
	const n, lat, par, runs = 200, 20 * time.Millisecond, 10, 7
	ideal := time.Duration(n/par) * lat
	var insts []*manifest.Instance
	for i := range n {
		insts = append(insts, inst(fmt.Sprintf("i%03d", i)))
	}
	st := mkStack(insts...)
	apply := func(journal bool) time.Duration {
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
			b.Fatalf("apply (journal %v): %v (created %d)", journal, err, res.Created)
		}
		return res.Wall
	}
	var plain, journaled, cost []float64
	for b.Loop() {
		for range runs {
			w0, w1 := apply(false), apply(true)
			plain = append(plain, float64(w0)/float64(ideal))
			journaled = append(journaled, float64(w1)/float64(ideal))
			cost = append(cost, float64(w1)/float64(w0))
		}
	}
	b.ReportMetric(median(plain), "wall/ideal")
	b.ReportMetric(median(journaled), "journal-wall/ideal")
	b.ReportMetric(median(cost), "journal/no-journal")
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
