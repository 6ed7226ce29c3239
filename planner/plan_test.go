package planner

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/manifest"
)

// testCaps is the fixed capability table of the planner tests: a plausible
// shape of the real drivers, not their exact tables.
var testCaps = map[string]drivers.Capabilities{
	"lxc": {Default: drivers.Replace, Fields: map[string]drivers.ChangeKind{
		"memory": drivers.InPlace, "swap": drivers.InPlace, "cpus": drivers.InPlace,
		"environment": drivers.Restart, "hostname": drivers.Restart, "labels": drivers.InPlace,
		"restart": drivers.InPlace, "autostart": drivers.InPlace, "stop_grace_period": drivers.InPlace,
		"template": drivers.Replace, "description": drivers.Ignore,
	}},
	"crun": {Default: drivers.Replace, Fields: map[string]drivers.ChangeKind{
		"memory": drivers.InPlace, "cpus": drivers.InPlace, "labels": drivers.InPlace,
		"restart": drivers.InPlace, "stop_grace_period": drivers.InPlace,
	}},
	"proxmox-lxc": {Default: drivers.Replace, CreateBeforeDestroy: true, Fields: map[string]drivers.ChangeKind{
		"memory": drivers.InPlace, "cores": drivers.InPlace, "description": drivers.InPlace,
		"tags": drivers.InPlace, "onboot": drivers.InPlace, "hostname": drivers.Restart,
	}},
	"proxmox-vm": {Default: drivers.Replace, CreateBeforeDestroy: true, Fields: map[string]drivers.ChangeKind{
		"memory": drivers.Restart, "cores": drivers.Restart, "description": drivers.InPlace,
		"tags": drivers.InPlace, "cloud_init": drivers.Restart,
	}},
}

func mkStack(name string, insts ...*manifest.Instance) *manifest.Stack {
	s := &manifest.Stack{Version: 1, Name: name, Instances: map[string]*manifest.Instance{}, File: "/stacks/" + name + "/berth.yaml"}
	for _, i := range insts {
		s.Instances[i.Name] = i
	}
	return s
}

func lxc(name string, mem manifest.ByteSize, deps ...string) *manifest.Instance {
	i := &manifest.Instance{Name: name, Backend: "lxc", Memory: mem, Template: &manifest.Template{Type: "busybox"}}
	for _, d := range deps {
		if i.DependsOn == nil {
			i.DependsOn = map[string]manifest.Dependency{}
		}
		i.DependsOn[d] = manifest.Dependency{Condition: manifest.ConditionStarted}
	}
	return i
}

// applied is the object a previous `up` of inst left behind.
func applied(stack string, inst *manifest.Instance, state drivers.State) drivers.ObservedInstance {
	spec, hash := CanonicalSpec(inst)
	return drivers.ObservedInstance{
		Ref:   drivers.ObjectRef{Backend: inst.Backend, Provider: inst.Provider, Name: ObjectName(stack, inst)},
		Owner: &drivers.Ownership{Stack: stack, Instance: inst.Name, SpecHash: hash, Spec: spec},
		State: state,
	}
}

func clone(i *manifest.Instance) *manifest.Instance {
	c := *i
	return &c
}

func intp(v int) *int { return &v }

func nodeLines(p *Plan) string {
	var b strings.Builder
	for _, n := range p.Nodes {
		b.WriteString(n.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func mustCompute(t *testing.T, in Input) *Plan {
	t.Helper()
	if in.Capabilities == nil {
		in.Capabilities = testCaps
	}
	p, err := Compute(in)
	if err != nil {
		t.Fatalf("Compute: %v", err)
	}
	return p
}

func TestComputeActions(t *testing.T) {
	db := lxc("db", 256*manifest.MiB)
	web := lxc("web", 256*manifest.MiB, "db")
	webEnv := clone(web)
	webEnv.Environment = map[string]string{"MODE": "prod"}
	webBig := clone(web)
	webBig.Memory = 512 * manifest.MiB
	webTpl := clone(web)
	webTpl.Template = &manifest.Template{Type: "download", Dist: "alpine", Release: "3.19"}
	vm := &manifest.Instance{Name: "vm", Backend: "proxmox-vm", Provider: "pve", Memory: manifest.GiB, Clone: &manifest.Clone{Template: "debian"}}
	vm2 := clone(vm)
	vm2.Clone = &manifest.Clone{Template: "ubuntu"}
	webDesc := clone(web)
	webDesc.Description = "ignored by lxc"

	cases := []struct {
		name     string
		stack    *manifest.Stack
		observed []drivers.ObservedInstance
		mode     Mode
		keep     bool
		want     string
	}{
		{
			name:  "create in dependency order",
			stack: mkStack("demo", web, db),
			want: "create db (lxc): new instance\n" +
				"create web (lxc) after [db]: new instance\n",
		},
		{
			name:     "no-op when hash matches and running",
			stack:    mkStack("demo", web, db),
			observed: []drivers.ObservedInstance{applied("demo", web, drivers.StateRunning), applied("demo", db, drivers.StateRunning)},
			want: "no-op db (lxc): up to date, running\n" +
				"no-op web (lxc) after [db]: up to date, running\n",
		},
		{
			name:     "update in place",
			stack:    mkStack("demo", webBig, db),
			observed: []drivers.ObservedInstance{applied("demo", web, drivers.StateRunning), applied("demo", db, drivers.StateRunning)},
			want: "no-op db (lxc): up to date, running\n" +
				"update web (lxc) after [db]: memory 256M -> 512M\n",
		},
		{
			name:     "update needing restart",
			stack:    mkStack("demo", webEnv, db),
			observed: []drivers.ObservedInstance{applied("demo", web, drivers.StateRunning), applied("demo", db, drivers.StateRunning)},
			want: "no-op db (lxc): up to date, running\n" +
				"update web (lxc, restart) after [db]: environment changed (needs restart)\n",
		},
		{
			name:     "update of a stopped object then start",
			stack:    mkStack("demo", webEnv, db),
			observed: []drivers.ObservedInstance{applied("demo", web, drivers.StateStopped), applied("demo", db, drivers.StateRunning)},
			want: "no-op db (lxc): up to date, running\n" +
				"update web (lxc) after [db]: environment changed\n" +
				"start web/start (lxc) after [web]: stopped, should run\n",
		},
		{
			name:     "replace",
			stack:    mkStack("demo", webTpl, db),
			observed: []drivers.ObservedInstance{applied("demo", web, drivers.StateRunning), applied("demo", db, drivers.StateRunning)},
			want: "no-op db (lxc): up to date, running\n" +
				"replace web (lxc) after [db]: template changed: forces replace\n",
		},
		{
			name:     "replace create-before-destroy",
			stack:    mkStack("demo", vm2),
			observed: []drivers.ObservedInstance{applied("demo", vm, drivers.StateRunning)},
			want:     "replace vm (proxmox-vm@pve, create-before-destroy): clone changed: forces replace\n",
		},
		{
			name:     "ignored field changes nothing",
			stack:    mkStack("demo", webDesc, db),
			observed: []drivers.ObservedInstance{applied("demo", web, drivers.StateRunning), applied("demo", db, drivers.StateRunning)},
			want: "no-op db (lxc): up to date, running\n" +
				"no-op web (lxc) after [db]: up to date, running\n",
		},
		{
			name:     "start stopped",
			stack:    mkStack("demo", web, db),
			observed: []drivers.ObservedInstance{applied("demo", web, drivers.StateStopped), applied("demo", db, drivers.StateRunning)},
			want: "no-op db (lxc): up to date, running\n" +
				"start web (lxc) after [db]: stopped, should run\n",
		},
		{
			name:     "orphan deleted",
			stack:    mkStack("demo", db),
			observed: []drivers.ObservedInstance{applied("demo", web, drivers.StateRunning), applied("demo", db, drivers.StateRunning)},
			want: "no-op db (lxc): up to date, running\n" +
				"delete web (lxc): orphan: no longer in the stack file\n",
		},
		{
			name:     "orphan kept",
			stack:    mkStack("demo", db),
			keep:     true,
			observed: []drivers.ObservedInstance{applied("demo", web, drivers.StateRunning), applied("demo", db, drivers.StateRunning)},
			want: "no-op db (lxc): up to date, running\n" +
				"no-op web (lxc): orphan: no longer in the stack file; kept (--keep-orphans)\n",
		},
		{
			name:     "down in reverse dependency order",
			stack:    mkStack("demo", web, db),
			mode:     ModeDown,
			observed: []drivers.ObservedInstance{applied("demo", web, drivers.StateRunning), applied("demo", db, drivers.StateRunning), applied("demo", lxc("old", 0), drivers.StateStopped)},
			want: "delete old (lxc): orphan: no longer in the stack file\n" +
				"delete web (lxc): down: stack demo is removed\n" +
				"delete db (lxc) after [web]: down: stack demo is removed\n",
		},
		{
			name:     "stop in reverse dependency order",
			stack:    mkStack("demo", web, db),
			mode:     ModeStop,
			observed: []drivers.ObservedInstance{applied("demo", web, drivers.StateRunning), applied("demo", db, drivers.StateRunning)},
			want: "stop web (lxc): stop: running\n" +
				"stop db (lxc) after [web]: stop: running\n",
		},
		{
			name:     "other stacks' objects are not ours",
			stack:    mkStack("demo", db),
			observed: []drivers.ObservedInstance{applied("other", web, drivers.StateRunning)},
			want:     "create db (lxc): new instance\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompute(t, Input{Stack: tc.stack, Observed: tc.observed, Mode: tc.mode, KeepOrphans: tc.keep})
			if got := nodeLines(p); got != tc.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestRestartPolicies(t *testing.T) {
	cases := []struct {
		policy string
		state  drivers.State
		exit   *int
		start  bool
		reason string
	}{
		{"no", drivers.StateExited, intp(0), false, "up to date, one-shot exited 0 (restart: no)"},
		{"no", drivers.StateExited, intp(1), true, "exited 1, not completed (restart: no): run again"},
		{"no", drivers.StateCreated, nil, true, "created but never started"},
		{"on-failure", drivers.StateExited, intp(0), false, "up to date, exited 0 (restart: on-failure)"},
		{"on-failure", drivers.StateExited, intp(3), true, "exited 3 (restart: on-failure)"},
		{"always", drivers.StateExited, intp(0), true, "exited 0 (restart: always)"},
		{"unless-stopped", drivers.StateStopped, nil, true, "stopped (restart: unless-stopped)"},
		{"", drivers.StateExited, intp(0), true, "exited 0, should run"},
		{"always", drivers.StateRunning, nil, false, "up to date, running"},
		{"always", drivers.StatePaused, nil, false, "up to date, paused (berth leaves paused instances alone)"},
	}
	for _, tc := range cases {
		t.Run(tc.policy+"/"+string(tc.state), func(t *testing.T) {
			job := lxc("job", 0)
			job.Restart = tc.policy
			o := applied("demo", job, tc.state)
			o.ExitCode = tc.exit
			p := mustCompute(t, Input{Stack: mkStack("demo", job), Observed: []drivers.ObservedInstance{o}})
			n := p.Nodes[0]
			if got := n.Action == Start; got != tc.start || n.Reason != tc.reason {
				t.Errorf("got %s, want start=%t reason %q", n, tc.start, tc.reason)
			}
		})
	}
}

func TestDrift(t *testing.T) {
	web := lxc("web", 256*manifest.MiB)
	o := applied("demo", web, drivers.StateRunning)
	o.Live = map[string]json.RawMessage{"memory": json.RawMessage(`"512M"`), "cpus": json.RawMessage(`2`)}
	p := mustCompute(t, Input{Stack: mkStack("demo", web), Observed: []drivers.ObservedInstance{o}})
	want := "update web (lxc): drift: memory changed outside berth (512M live, 256M applied)\n"
	if got := nodeLines(p); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	c := p.Nodes[0].Changes
	if len(c) != 1 || !c[0].Drift || string(c[0].Old) != `"512M"` || string(c[0].New) != `"256M"` {
		t.Errorf("changes = %+v", c)
	}

	// Live equal to what the file now wants: nothing to correct even
	// though the last-applied spec differs.
	big := clone(web)
	big.Memory = 512 * manifest.MiB
	p = mustCompute(t, Input{Stack: mkStack("demo", big), Observed: []drivers.ObservedInstance{o}})
	if p.HasChanges() {
		t.Errorf("live already matches the file, got %s", nodeLines(p))
	}

	// Drift on a replace-only field replaces.
	o2 := applied("demo", web, drivers.StateRunning)
	o2.Live = map[string]json.RawMessage{"template": json.RawMessage(`{"type":"download"}`)}
	p = mustCompute(t, Input{Stack: mkStack("demo", web), Observed: []drivers.ObservedInstance{o2}})
	if n := p.Nodes[0]; n.Action != Replace || n.Reason != "drift: template changed outside berth: forces replace" {
		t.Errorf("got %s", n)
	}
}

func TestForeignNameClash(t *testing.T) {
	web := lxc("web", 0)
	foreign := drivers.ObservedInstance{Ref: drivers.ObjectRef{Backend: "lxc", Name: "demo-web"}, State: drivers.StateRunning}
	other := applied("other", lxc("x", 0), drivers.StateRunning)
	other.Ref.Name = "demo-db"
	db := lxc("db", 0)
	crunWeb := &manifest.Instance{Name: "web", Backend: "crun", Image: "busybox"}

	_, err := Compute(Input{Stack: mkStack("demo", web, db), Observed: []drivers.ObservedInstance{foreign, other}, Capabilities: testCaps})
	if err == nil {
		t.Fatal("want a name clash error")
	}
	for _, want := range []string{
		"lxc container demo-web exists and is not owned by stack demo; berth will not adopt or delete it",
		"lxc container demo-db exists and is owned by stack other, not demo; berth will not adopt or delete it",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// Same name on another backend is no clash.
	if _, err := Compute(Input{Stack: mkStack("demo", crunWeb), Observed: []drivers.ObservedInstance{foreign}, Capabilities: testCaps}); err != nil {
		t.Errorf("crun web vs lxc demo-web: %v", err)
	}
	// Down never creates, so a foreign object is no concern.
	if _, err := Compute(Input{Stack: mkStack("demo", web), Observed: []drivers.ObservedInstance{foreign}, Mode: ModeDown}); err != nil {
		t.Errorf("down: %v", err)
	}
}

func TestCycle(t *testing.T) {
	a, b, c := lxc("a", 0, "c"), lxc("b", 0, "a"), lxc("c", 0, "b")
	_, err := Compute(Input{Stack: mkStack("demo", a, b, c, lxc("d", 0)), Capabilities: testCaps})
	if err == nil || !strings.Contains(err.Error(), "dependency cycle: a -> c -> b -> a") {
		t.Fatalf("err = %v", err)
	}
}

func TestBackendChange(t *testing.T) {
	old := lxc("web", 0)
	now := &manifest.Instance{Name: "web", Backend: "crun", Image: "busybox"}
	p := mustCompute(t, Input{Stack: mkStack("demo", now), Observed: []drivers.ObservedInstance{applied("demo", old, drivers.StateRunning)}})
	want := "delete web/old (lxc): backend changed lxc -> crun: the old object is deleted\n" +
		"create web (crun) after [web/old]: backend changed lxc -> crun: new instance\n"
	if got := nodeLines(p); got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
}

func TestNameTakenByOrphan(t *testing.T) {
	// "app" is renamed "www" but keeps its object name: the new object
	// can only be made once the orphan is gone.
	app := lxc("app", 0)
	app.ContainerName = "site"
	www := clone(app)
	www.Name = "www"
	obs := []drivers.ObservedInstance{applied("demo", app, drivers.StateRunning)}
	p := mustCompute(t, Input{Stack: mkStack("demo", www), Observed: obs})
	want := "delete app (lxc): orphan: no longer in the stack file\n" +
		"create www (lxc) after [app]: new instance\n"
	if got := nodeLines(p); got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
	_, err := Compute(Input{Stack: mkStack("demo", www), Observed: obs, KeepOrphans: true, Capabilities: testCaps})
	if err == nil || !strings.Contains(err.Error(), "lxc container site is owned by instance app of stack demo") {
		t.Errorf("keep-orphans: err = %v", err)
	}
}

func TestCanonicalSpec(t *testing.T) {
	web := lxc("web", 256*manifest.MiB, "db")
	web.Environment = map[string]string{"Z": "1", "A": "2"}
	web.Healthcheck = &manifest.Healthcheck{Test: []string{"CMD", "true"}}
	web.CloudInit = &manifest.CloudInit{User: "root", Password: "hunter2"}
	spec, hash := CanonicalSpec(web)
	want := `{"backend":"lxc","cloud_init":{"password":"********","user":"root"},"environment":{"A":"2","Z":"1"},"memory":"256M","template":{"type":"busybox"}}`
	if string(spec) != want {
		t.Errorf("spec = %s\nwant   %s", spec, want)
	}
	if len(hash) != 64 {
		t.Errorf("hash %q is not a hex sha256", hash)
	}
	// depends_on and healthcheck never reach the object: same hash.
	other := clone(web)
	other.DependsOn = nil
	other.Healthcheck = nil
	if _, h := CanonicalSpec(other); h != hash {
		t.Errorf("hash changed with depends_on/healthcheck")
	}
	other.Memory = 512 * manifest.MiB
	if _, h := CanonicalSpec(other); h == hash {
		t.Errorf("hash did not change with memory")
	}
	// A stored spec with other key order compares equal.
	p := mustCompute(t, Input{Stack: mkStack("demo", web, lxc("db", 0)), Observed: []drivers.ObservedInstance{{
		Ref:   drivers.ObjectRef{Backend: "lxc", Name: "demo-web"},
		Owner: &drivers.Ownership{Stack: "demo", Instance: "web", SpecHash: "old", Spec: json.RawMessage(`{"template": {"type":"busybox"}, "memory":"256M","environment":{"Z":"1","A":"2"},"cloud_init":{"user":"root","password":"********"},"backend":"lxc"}`)},
		State: drivers.StateRunning,
	}}})
	if n := p.Node("web"); n.Action != NoOp {
		t.Errorf("reordered stored spec: %s", n)
	}
}

func TestObjectName(t *testing.T) {
	i := lxc("web", 0)
	if got := ObjectName("demo", i); got != "demo-web" {
		t.Errorf("got %q", got)
	}
	i.ContainerName = "frontend"
	if got := ObjectName("demo", i); got != "frontend" {
		t.Errorf("got %q", got)
	}
}

func TestFingerprint(t *testing.T) {
	db, web := lxc("db", 0), lxc("web", 0, "db")
	obs := []drivers.ObservedInstance{applied("demo", db, drivers.StateRunning)}
	in := Input{Stack: mkStack("demo", web, db), Observed: obs}
	a, b := mustCompute(t, in), mustCompute(t, in)
	if a.Fingerprint() == "" || a.Fingerprint() != b.Fingerprint() || nodeLines(a) != nodeLines(b) {
		t.Fatalf("not deterministic")
	}
	stopped := []drivers.ObservedInstance{applied("demo", db, drivers.StateStopped)}
	if c := mustCompute(t, Input{Stack: in.Stack, Observed: stopped}); c.Fingerprint() == a.Fingerprint() {
		t.Errorf("fingerprint ignores observed state")
	}
	big := clone(web)
	big.Memory = manifest.GiB
	if c := mustCompute(t, Input{Stack: mkStack("demo", big, db), Observed: obs}); c.Fingerprint() == a.Fingerprint() {
		t.Errorf("fingerprint ignores the desired spec")
	}
	if c := mustCompute(t, Input{Stack: in.Stack, Observed: obs, Mode: ModeDown}); c.Fingerprint() == a.Fingerprint() {
		t.Errorf("fingerprint ignores the mode")
	}
}

func TestMissingCapabilities(t *testing.T) {
	web := lxc("web", 0)
	big := clone(web)
	big.Memory = manifest.GiB
	_, err := Compute(Input{Stack: mkStack("demo", big), Observed: []drivers.ObservedInstance{applied("demo", web, drivers.StateRunning)}})
	if err == nil || !strings.Contains(err.Error(), "no capabilities for backend lxc") {
		t.Errorf("err = %v", err)
	}
}

func TestNoLastAppliedSpec(t *testing.T) {
	web := lxc("web", 0)
	o := applied("demo", web, drivers.StateRunning)
	o.Owner.Spec = nil
	if p := mustCompute(t, Input{Stack: mkStack("demo", web), Observed: []drivers.ObservedInstance{o}}); p.HasChanges() {
		t.Errorf("same hash, no spec: %s", nodeLines(p))
	}
	o.Owner.SpecHash = "0000"
	p := mustCompute(t, Input{Stack: mkStack("demo", web), Observed: []drivers.ObservedInstance{o}})
	want := "replace web (lxc): spec hash changed and the object records no last-applied spec: forces replace\n"
	if got := nodeLines(p); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestOwnedWithoutInstanceName(t *testing.T) {
	o := applied("demo", lxc("x", 0), drivers.StateRunning)
	o.Owner.Instance = ""
	p := mustCompute(t, Input{Stack: mkStack("demo"), Observed: []drivers.ObservedInstance{o}})
	if got, want := nodeLines(p), "delete demo-x (lxc): orphan: no longer in the stack file\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
