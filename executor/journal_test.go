package executor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/memdriver"
	"github.com/berth-dev/berth/manifest"
	"github.com/berth-dev/berth/planner"
)

// durableCheck wraps a driver: every Create and Delete first checks that
// the journal's fsynced prefix already announces that call (an op-intent
// for the object), which is the crash-safety promise of the journal.
type durableCheck struct {
	drivers.Driver
	j *Journal

	mu       sync.Mutex
	problems []string
	checked  int // creates and deletes
	starts   int
}

func (d *durableCheck) check(op, name string) {
	d.j.mu.Lock()
	synced := d.j.synced
	d.j.mu.Unlock()
	data, err := os.ReadFile(d.j.Path())
	found := false
	if err == nil {
		// A fresh journal with one apply: line k is entry k.
		sc := bufio.NewScanner(bytes.NewReader(data))
		for k := uint64(1); k <= synced && sc.Scan(); k++ {
			var e JournalEntry
			if json.Unmarshal(sc.Bytes(), &e) == nil && e.Type == "op-intent" && e.Op == op && e.Ref != nil && e.Ref.Name == name {
				found = true
			}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.checked++
	if !found {
		d.problems = append(d.problems, fmt.Sprintf("%s %s ran before its op-intent was fsynced (synced %d entries, read error %v)", op, name, synced, err))
	}
}

func (d *durableCheck) Create(ctx context.Context, t drivers.Target) (drivers.ObjectRef, error) {
	d.check("create", t.ObjectName)
	return d.Driver.Create(ctx, t)
}

func (d *durableCheck) Delete(ctx context.Context, ref drivers.ObjectRef) error {
	d.check("delete", ref.Name)
	return d.Driver.Delete(ctx, ref)
}

// Start checks that the begin line is on disk: it is entry 1.
func (d *durableCheck) Start(ctx context.Context, ref drivers.ObjectRef) error {
	d.j.mu.Lock()
	synced := d.j.synced
	d.j.mu.Unlock()
	d.mu.Lock()
	d.starts++
	if synced < 1 {
		d.problems = append(d.problems, "start "+ref.Name+" ran before the begin line was fsynced")
	}
	d.mu.Unlock()
	return d.Driver.Start(ctx, ref)
}

// Every create and delete of an up and a down runs only after the fsync
// covering its op-intent returned, also when many calls are announced at
// once and share fsyncs; and no driver call runs before the begin line is
// on disk.
func TestJournalIntentDurableBeforeCall(t *testing.T) {
	const n = 24
	var insts []*manifest.Instance
	for i := range n {
		insts = append(insts, inst(fmt.Sprintf("i%02d", i)))
	}
	st := mkStack(insts...)
	d := newMem()
	d.SetLatency(memdriver.OpCreate, 2*time.Millisecond)
	d.SetLatency(memdriver.OpDelete, 2*time.Millisecond)
	for _, mode := range []planner.Mode{planner.ModeUp, planner.ModeDown} {
		j, err := OpenJournal(t.TempDir(), testStack)
		if err != nil {
			t.Fatal(err)
		}
		chk := &durableCheck{Driver: d, j: j}
		p := mkPlan(t, st, d, mode)
		o := opts(st, chk, 4)
		o.Journal = j
		if _, err := Apply(context.Background(), p, o); err != nil {
			t.Fatalf("mode %v: %v", mode, err)
		}
		j.Close()
		if chk.checked != n {
			t.Errorf("mode %v: %d calls checked, want %d", mode, chk.checked, n)
		}
		for _, p := range chk.problems {
			t.Error(p)
		}
	}

	// A plan of starts only: the first start waits for the begin line.
	d2 := newMem()
	for _, in := range insts[:4] {
		seed(d2, in, drivers.StateStopped)
	}
	st2 := mkStack(insts[:4]...)
	j, err := OpenJournal(t.TempDir(), testStack)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	chk := &durableCheck{Driver: d2, j: j}
	o := opts(st2, chk, 4)
	o.Journal = j
	res, err := Apply(context.Background(), mkPlan(t, st2, d2, planner.ModeUp), o)
	if err != nil || res.Started != 4 || chk.starts != 4 {
		t.Fatalf("starts: %v, %+v, %d start calls", err, res, chk.starts)
	}
	for _, p := range chk.problems {
		t.Error(p)
	}
}

// The journal of a failed apply, cut before its end marker (as a crash
// right there would leave it), has no call left open: every announced
// call was run and finished, or closed as cancelled.
func TestJournalClosesEveryAnnouncedCall(t *testing.T) {
	var insts []*manifest.Instance
	for i := range 12 {
		insts = append(insts, inst(fmt.Sprintf("i%02d", i)))
	}
	st := mkStack(insts...)
	d := newMem()
	d.SetLatency(memdriver.OpCreate, time.Millisecond)
	d.FailOn(memdriver.OpCreate, obj("i03"))
	j, err := OpenJournal(t.TempDir(), testStack)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	o := opts(st, d, 2)
	o.Journal = j
	if _, err := Apply(context.Background(), mkPlan(t, st, d, planner.ModeUp), o); err == nil {
		t.Fatal("apply succeeded")
	}
	text := readJournal(t, j.Path())
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if !strings.Contains(lines[len(lines)-1], `"type":"end"`) {
		t.Fatalf("journal does not end with its end marker:\n%s", text)
	}
	count := map[string]int{}
	for _, l := range lines {
		var e JournalEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("bad line %q: %v", l, err)
		}
		if e.Op == "create" {
			count[e.Type]++
		}
	}
	if count["op-intent"] == 0 || count["op-intent"] != count["op-start"]+count["op-cancelled"] {
		t.Errorf("create lines %v: want one op-intent per op-start or op-cancelled:\n%s", count, text)
	}
	r, err := parseJournal([]byte(strings.Join(lines[:len(lines)-1], "\n")))
	if err != nil || r == nil {
		t.Fatalf("parse without end = %v, %v", r, err)
	}
	if len(r.InFlight) != 0 || len(r.Queued) != 0 {
		t.Errorf("open calls after a finished rollback: in flight %v, queued %v\n%s", r.InFlight, r.Queued, text)
	}
	if !r.RollingBack || strings.Join(r.Failed, ",") != "create i03" {
		t.Errorf("recovery = %+v", r)
	}
}

// A create announced (op-intent on disk) but never started is reported
// as queued, not in flight; one whose op-start follows is in flight; one
// closed by op-cancelled is neither.
func TestRecoverQueued(t *testing.T) {
	lines := []string{
		`{"time":"2026-11-27T01:00:00Z","type":"begin","stack":"demo","fingerprint":"abc","pid":9,"host":"box"}`,
		`{"time":"2026-11-27T01:00:01Z","type":"op-intent","node":"a","op":"create","ref":{"backend":"lxc","name":"demo-a"}}`,
		`{"time":"2026-11-27T01:00:01Z","type":"op-intent","node":"b","op":"create","ref":{"backend":"lxc","name":"demo-b"}}`,
		`{"time":"2026-11-27T01:00:01Z","type":"op-intent","node":"c","op":"create","ref":{"backend":"lxc","name":"demo-c"}}`,
		`{"time":"2026-11-27T01:00:01Z","type":"op-start","node":"a","op":"create","ref":{"backend":"lxc","name":"demo-a"}}`,
		`{"time":"2026-11-27T01:00:02Z","type":"op-cancelled","node":"c","op":"create","ref":{"backend":"lxc","name":"demo-c"}}`,
	}
	r := recoverJournal(t, strings.Join(lines, "\n")+"\n")
	if len(r.InFlight) != 1 || r.InFlight[0].Ref.Name != "demo-a" || len(r.Queued) != 1 || r.Queued[0].Ref.Name != "demo-b" {
		t.Errorf("recovery = %+v", r)
	}
	want := "in flight: create demo-a (node a); queued, not known to have started: create demo-b (node b)."
	if !strings.Contains(r.String(), want) {
		t.Errorf("report:\n%s\nwant it to contain:\n%s", r, want)
	}
}
