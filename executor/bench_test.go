package executor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/berth-dev/berth/drivers/memdriver"
	"github.com/berth-dev/berth/manifest"
	"github.com/berth-dev/berth/planner"
)

// benchOverhead applies 200 independent creates whose driver create takes
// 20 ms, at Parallel 10: the ideal wall time is 200*20ms/10 = 0.4 s. It
// reports wall/ideal (target <= 1.1).
func benchOverhead(b *testing.B, journal bool) {
	const n, lat, par = 200, 20 * time.Millisecond, 10
	ideal := time.Duration(n/par) * lat
	var insts []*manifest.Instance
	for i := range n {
		insts = append(insts, inst(fmt.Sprintf("i%03d", i)))
	}
	st := mkStack(insts...)
	var total time.Duration
	for b.Loop() {
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
		total += res.Wall
	}
	b.ReportMetric(float64(total)/float64(b.N)/float64(ideal), "wall/ideal")
	b.ReportMetric((float64(total)/float64(b.N))/1e9, "wall-s")
}

func BenchmarkExecutorOverhead(b *testing.B) { benchOverhead(b, false) }

// The same with the fsynced journal on, for information.
func BenchmarkExecutorOverheadJournal(b *testing.B) { benchOverhead(b, true) }
