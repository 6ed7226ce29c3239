package memdriver_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/drivertest"
	"github.com/berth-dev/berth/drivers/memdriver"
	"github.com/berth-dev/berth/manifest"
)

func running(name string) *manifest.Instance {
	return &manifest.Instance{Name: name, Backend: "mem", Image: "busybox", Command: []string{"sleep", "inf"}, Memory: 64 * manifest.MiB}
}

func TestContract(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		New:     func(t *testing.T) drivers.Driver { return memdriver.New("mem") },
		Stack:   "ct",
		Running: running,
		Exiting: func(t *testing.T, d drivers.Driver, name string, code int) *manifest.Instance {
			d.(*memdriver.Driver).OneShot("ct-"+name, code, 2)
			inst := running(name)
			inst.Command = []string{"sh", "-c", "exit"}
			return inst
		},
		MakeForeign: func(t *testing.T, d drivers.Driver, name string) {
			d.(*memdriver.Driver).Put(drivers.ObservedInstance{Ref: drivers.ObjectRef{Name: name}, State: drivers.StateRunning})
		},
		UpdateInPlace: func(inst *manifest.Instance) string {
			inst.Memory = 128 * manifest.MiB
			return "memory"
		},
	})
}

func TestContractCreateBeforeDestroy(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		New: func(t *testing.T) drivers.Driver {
			d := memdriver.New("mem")
			d.SetCapabilities(drivers.Capabilities{Default: drivers.InPlace, CreateBeforeDestroy: true})
			return d
		},
		Stack:   "cbd",
		Running: running,
	})
}

func target(name string) drivers.Target {
	inst := running(name)
	return drivers.Target{Stack: "s", Instance: inst, ObjectName: "s-" + name, Owner: drivertest.Owner("s", inst)}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	d := memdriver.New("mem")
	boom := errors.New("boom")
	d.Fail(memdriver.Fault{Op: memdriver.OpStart, Name: "s-b", Err: boom})
	d.Fail(memdriver.Fault{Nth: 4})
	a, err := d.Create(ctx, target("a")) // call 1
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Create(ctx, target("b")) // call 2
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, b); !errors.Is(err, boom) { // call 3 (named fault)
		t.Fatalf("start b = %v, want boom", err)
	}
	if _, err := d.Observe(ctx, "s"); err != nil { // observe is not counted by Nth
		t.Fatal(err)
	}
	if err := d.Start(ctx, a); !errors.Is(err, memdriver.ErrInjected) { // call 4
		t.Fatalf("4th call = %v, want ErrInjected", err)
	}
	if err := d.Start(ctx, a); err != nil { // call 5
		t.Fatalf("5th call = %v, want nil", err)
	}
	var got []string
	for _, c := range d.Calls() {
		got = append(got, c.String())
		if c.End.Before(c.Start) {
			t.Errorf("call %v ends before it starts", c)
		}
	}
	want := []string{"create s-a", "create s-b", "start s-b (error: start s-b: boom)", "observe",
		"start s-a (error: start s-a: memdriver: injected failure)", "start s-a"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The failed start changed nothing.
	for _, o := range d.Objects() {
		if o.Ref.Name == "s-b" && o.State != drivers.StateCreated {
			t.Errorf("s-b state %s after a failed start, want created", o.State)
		}
	}
}

func TestHighWaterAndBlock(t *testing.T) {
	ctx := context.Background()
	d := memdriver.New("mem")
	release := d.Block(memdriver.OpCreate, "")
	var wg sync.WaitGroup
	for _, n := range []string{"a", "b", "c"} {
		wg.Add(1)
		go func() { defer wg.Done(); d.Create(ctx, target(n)) }()
	}
	for len(d.Calls()) < 3 {
		time.Sleep(time.Millisecond)
	}
	if n := len(d.Objects()); n != 0 {
		t.Errorf("%d objects exist while creates are blocked", n)
	}
	release()
	wg.Wait()
	if hw := d.HighWater(); hw != 3 {
		t.Errorf("high water = %d, want 3", hw)
	}
	if n := len(d.Objects()); n != 3 {
		t.Errorf("%d objects, want 3", n)
	}
}

func TestHealthAndOneShot(t *testing.T) {
	ctx := context.Background()
	d := memdriver.New("mem")
	d.HealthyAfter("s-a", 2)
	a, _ := d.Create(ctx, target("a"))
	if _, err := d.Exec(ctx, a, drivers.ExecRequest{Argv: []string{"true"}}); !errors.Is(err, drivers.ErrNotRunning) {
		t.Errorf("exec in a created object = %v, want ErrNotRunning", err)
	}
	d.Start(ctx, a)
	var codes []int
	for range 4 {
		c, err := d.Exec(ctx, a, drivers.ExecRequest{Argv: []string{"true"}})
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, c)
	}
	if want := []int{1, 1, 0, 0}; !equalInts(codes, want) {
		t.Errorf("probe codes %v, want %v", codes, want)
	}

	d.OneShot("s-job", 7, 1)
	j, _ := d.Create(ctx, target("job"))
	d.Start(ctx, j)
	var states []string
	for range 3 {
		obs, _ := d.Observe(ctx, "s")
		for _, o := range obs {
			if o.Ref.Name == "s-job" {
				s := string(o.State)
				if o.ExitCode != nil {
					s += "/" + string(rune('0'+*o.ExitCode))
				}
				states = append(states, s)
			}
		}
	}
	if got := strings.Join(states, ","); got != "running,exited/7,exited/7" {
		t.Errorf("one-shot states %s, want running,exited/7,exited/7", got)
	}
}

func TestLatencyHonoursContext(t *testing.T) {
	d := memdriver.New("mem")
	d.SetLatency(memdriver.OpCreate, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Create(ctx, target("a")); !errors.Is(err, context.Canceled) {
		t.Errorf("create with a cancelled ctx = %v, want context.Canceled", err)
	}
	if n := len(d.Objects()); n != 0 {
		t.Errorf("cancelled create left %d objects", n)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
