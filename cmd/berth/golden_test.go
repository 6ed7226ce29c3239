package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/memdriver"
	"github.com/berth-dev/berth/planner"
)

// ownedObject is a live object of stack demo as berth would have made it.
func ownedObject(t *testing.T, e *cmdEnv, instance string, state drivers.State, age time.Duration, ips ...string) drivers.ObservedInstance {
	t.Helper()
	st, err := loadStack(e.g)
	if err != nil {
		t.Fatal(err)
	}
	owner := &drivers.Ownership{Stack: "demo", Instance: instance, SpecHash: "old", Spec: json.RawMessage(`{}`)}
	if inst := st.Instances[instance]; inst != nil {
		owner.Spec, owner.SpecHash = planner.CanonicalSpec(inst)
	}
	return drivers.ObservedInstance{Ref: drivers.ObjectRef{Backend: "lxc", Name: "demo-" + instance}, Owner: owner,
		State: state, IPs: ips, Created: t0.Add(-age)}
}

func TestPsTableGolden(t *testing.T) {
	e := newCmdEnv(t, demoStack)
	d := e.driver("lxc")
	d.Put(ownedObject(t, e, "db", drivers.StateRunning, 5*time.Minute, "10.0.3.5"))
	d.Put(ownedObject(t, e, "web", drivers.StateRunning, 3*time.Hour, "10.0.3.6", "fd00::6"))
	code := 1
	old := ownedObject(t, e, "worker", drivers.StateExited, 72*time.Hour)
	old.ExitCode = &code
	d.Put(old)
	d.Put(drivers.ObservedInstance{Ref: drivers.ObjectRef{Name: "foreign"}, State: drivers.StateRunning})
	d.HealthyAfter("demo-db", 0)
	if err := e.ps(false); err != nil {
		t.Fatal(err)
	}
	golden(t, "golden/ps.txt", e.out.Bytes())
	if err := e.ps(true); err != nil {
		t.Fatal(err)
	}
	golden(t, "golden/ps.json", e.out.Bytes())
}

func TestFailureReportGolden(t *testing.T) {
	e := newCmdEnv(t, demoStack)
	e.driver("lxc").FailOn(memdriver.OpStart, "demo-web")
	if err := e.up(nil); exitCode(err) != 1 {
		t.Fatalf("up = %v, want exit 1", err)
	}
	golden(t, "golden/up-failure.stderr", e.err.Bytes())
}
