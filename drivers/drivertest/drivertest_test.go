package drivertest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/drivertest"
	"github.com/berth-dev/berth/drivers/memdriver"
	"github.com/berth-dev/berth/manifest"
)

// broken is a memdriver with one contract violation, chosen by name.
type broken struct {
	*memdriver.Driver
	fault string
}

func (b *broken) Capabilities() drivers.Capabilities {
	c := b.Driver.Capabilities()
	if b.fault == "exists" {
		c.CreateBeforeDestroy = false // claims exclusive names, allows duplicates
	}
	return c
}

func (b *broken) Observe(ctx context.Context, stack string) ([]drivers.ObservedInstance, error) {
	obs, err := b.Driver.Observe(ctx, stack)
	var out []drivers.ObservedInstance
	for _, o := range obs {
		switch b.fault {
		case "owner":
			o.Owner = nil
		case "foreign":
			if o.Owner == nil {
				continue
			}
		case "exitcode":
			o.ExitCode = nil
		case "otherstack":
			if o.Owner != nil && o.Owner.Stack != stack {
				continue
			}
		}
		out = append(out, o)
	}
	return out, err
}

func (b *broken) Delete(ctx context.Context, ref drivers.ObjectRef) error {
	err := b.Driver.Delete(ctx, ref)
	if b.fault == "notfound" && err != nil {
		return errors.New("no such container")
	}
	return err
}

func (b *broken) Stop(ctx context.Context, ref drivers.ObjectRef, timeout time.Duration) error {
	if b.fault == "stop" {
		return nil
	}
	return b.Driver.Stop(ctx, ref, timeout)
}

func (b *broken) Update(ctx context.Context, ref drivers.ObjectRef, t drivers.Target, changed []string) error {
	if b.fault == "update" {
		return nil
	}
	return b.Driver.Update(ctx, ref, t, changed)
}

func (b *broken) Exec(ctx context.Context, ref drivers.ObjectRef, req drivers.ExecRequest) (int, error) {
	if b.fault == "exec" {
		return 0, nil
	}
	return b.Driver.Exec(ctx, ref, req)
}

func running(name string) *manifest.Instance {
	return &manifest.Instance{Name: name, Backend: "mem", Image: "busybox", Memory: 64 * manifest.MiB}
}

// TestBrokenDriverHelper runs the suite against one broken driver; it is
// the child process of TestSuiteCatchesBrokenDrivers.
func TestBrokenDriverHelper(t *testing.T) {
	fault := os.Getenv("DRIVERTEST_BREAK")
	if fault == "" {
		t.Skip("child process of TestSuiteCatchesBrokenDrivers")
	}
	drivertest.Run(t, drivertest.Harness{
		New: func(t *testing.T) drivers.Driver {
			d := memdriver.New("mem")
			if fault == "exists" {
				d.SetCapabilities(drivers.Capabilities{Default: drivers.InPlace, CreateBeforeDestroy: true})
			}
			return &broken{Driver: d, fault: fault}
		},
		Stack:   "bt",
		Running: running,
		Exiting: func(t *testing.T, d drivers.Driver, name string, code int) *manifest.Instance {
			d.(*broken).OneShot("bt-"+name, code, 0)
			return running(name)
		},
		MakeForeign: func(t *testing.T, d drivers.Driver, name string) {
			d.(*broken).Put(drivers.ObservedInstance{Ref: drivers.ObjectRef{Name: name}, State: drivers.StateRunning})
		},
		UpdateInPlace: func(inst *manifest.Instance) string { inst.Memory = 128 * manifest.MiB; return "memory" },
	})
}

// The suite must catch every contract violation it claims to check.
func TestSuiteCatchesBrokenDrivers(t *testing.T) {
	for fault, want := range map[string]string{
		"owner":      "Owner is nil",
		"notfound":   "second Delete",
		"exists":     "Create of an existing name",
		"stop":       "after Stop, observed running, want stopped",
		"foreign":    "does not list the foreign object",
		"exitcode":   "exit code nil",
		"update":     "after Update",
		"exec":       "want exit 3",
		"otherstack": "does not list bt-other-same of stack bt-other",
	} {
		t.Run(fault, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenDriverHelper$", "-test.v")
			cmd.Env = append(os.Environ(), "DRIVERTEST_BREAK="+fault)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a driver with fault %q:\n%s", fault, out)
			}
			if !strings.Contains(string(out), want) {
				t.Errorf("fault %q: output lacks %q:\n%s", fault, want, out)
			}
		})
	}
}
