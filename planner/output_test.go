package planner

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/manifest"
)

// mixedPlan has one node of each kind and a secret in a changed field.
func mixedPlan(t *testing.T) *Plan {
	t.Helper()
	db := lxc("db", 256*manifest.MiB)
	web := lxc("web", 256*manifest.MiB, "db")
	webNew := clone(web)
	webNew.Memory = 512 * manifest.MiB
	webNew.Environment = map[string]string{"MODE": "prod"}
	vm := &manifest.Instance{Name: "vm", Backend: "proxmox-vm", Provider: "pve", Clone: &manifest.Clone{Template: "debian"},
		CloudInit: &manifest.CloudInit{User: "root", Password: "hunter2-old"}}
	vmNew := clone(vm)
	vmNew.CloudInit = &manifest.CloudInit{User: "admin", Password: "hunter2-new"}
	vmNew.Clone = &manifest.Clone{Template: "ubuntu"}
	cache := lxc("cache", 0)
	obs := []drivers.ObservedInstance{
		applied("demo", db, drivers.StateRunning), applied("demo", web, drivers.StateRunning),
		applied("demo", vm, drivers.StateRunning), applied("demo", lxc("old", 0), drivers.StateStopped),
	}
	obs[2].Live = map[string]json.RawMessage{"cloud_init": json.RawMessage(`{"user":"root","password":"hunter2-live"}`)}
	return mustCompute(t, Input{Stack: mkStack("demo", db, webNew, vmNew, cache), Observed: obs})
}

func TestJSONRoundTrip(t *testing.T) {
	p := mixedPlan(t)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, p); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["format_version"] != FormatVersion || doc["file"] != "/stacks/demo/berth.yaml" || doc["fingerprint"] != p.Fingerprint() {
		t.Errorf("header: %v %v %v", doc["format_version"], doc["file"], doc["fingerprint"])
	}
	actions := map[string]string{}
	for _, n := range doc["nodes"].([]any) {
		m := n.(map[string]any)
		b, _ := json.Marshal(m["actions"])
		actions[m["id"].(string)] = string(b)
	}
	want := map[string]string{"cache": `["create"]`, "db": `["no-op"]`, "web": `["update"]`, "vm": `["create","delete"]`, "old": `["delete"]`}
	for id, a := range want {
		if actions[id] != a {
			t.Errorf("%s actions = %s, want %s", id, actions[id], a)
		}
	}

	back, err := ReadJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if nodeLines(back) != nodeLines(p) || back.Fingerprint() != p.Fingerprint() || back.File != p.File || back.Mode != p.Mode {
		t.Errorf("round trip differs:\n%s\nvs\n%s", nodeLines(back), nodeLines(p))
	}
	var a, b bytes.Buffer
	if err := RenderText(&a, p, false); err != nil {
		t.Fatal(err)
	}
	if err := RenderText(&b, back, false); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("saved plan renders differently:\n%s\nvs\n%s", b.String(), a.String())
	}
	var again bytes.Buffer
	if err := WriteJSON(&again, back); err != nil {
		t.Fatal(err)
	}
	if again.String() != buf.String() {
		t.Errorf("JSON not stable through a round trip")
	}
}

func TestReadJSONRejects(t *testing.T) {
	for _, in := range []string{
		`{"format_version":"2.0","stack":"x","mode":"up","nodes":[]}`,
		`{"format_version":"1.0","stack":"x","mode":"sideways","nodes":[]}`,
		`{"format_version":"1.0","stack":"x","mode":"up","nodes":[{"id":"a","action":"explode"}]}`,
		`not json`,
	} {
		if _, err := ReadJSON(strings.NewReader(in)); err == nil {
			t.Errorf("ReadJSON(%s) accepted", in)
		}
	}
	if _, err := ReadJSON(strings.NewReader(`{"format_version":"1.7","stack":"x","mode":"down","nodes":[]}`)); err != nil {
		t.Errorf("minor version: %v", err)
	}
}

func TestNoSecretsInOutput(t *testing.T) {
	p := mixedPlan(t)
	n := p.Node("vm")
	if n == nil || n.Action != Replace {
		t.Fatalf("vm: %v", n)
	}
	var out bytes.Buffer
	for _, f := range []func() error{
		func() error { return WriteJSON(&out, p) },
		func() error { return RenderText(&out, p, false) },
		func() error { return RenderText(&out, p, true) },
		func() error { return WriteDOT(&out, p) },
	} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	out.WriteString(nodeLines(p))
	if strings.Contains(out.String(), "hunter2") {
		t.Errorf("a secret leaked:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "cloud_init: (sensitive value)") {
		t.Errorf("sensitive change not shown:\n%s", out.String())
	}
}

func TestRenderText(t *testing.T) {
	p := mixedPlan(t)
	var plain, color bytes.Buffer
	if err := RenderText(&plain, p, false); err != nil {
		t.Fatal(err)
	}
	if err := RenderText(&color, p, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  + create cache (lxc demo-cache)\n",
		"  ~ update in-place, then restart web (lxc demo-web) after [db]\n",
		"      ~ memory: \"256M\" -> \"512M\"\n",
		"      + environment: {\"MODE\":\"prod\"}  # needs restart\n",
		"+/- replace (create, then delete) vm (proxmox-vm@pve demo-vm)\n",
		"      ~ clone:  # forces replacement\n          ~ template: \"debian\" -> \"ubuntu\"\n",
		"      ~ cloud_init: (sensitive value)  # drift: changed outside berth\n",
		"  - delete old (lxc demo-old)\n",
		"Plan: 1 to create, 1 to update, 1 to replace, 1 to delete.\nDrift: 1 instance was changed outside berth; the plan puts it back as the file says.\n",
	} {
		if !strings.Contains(plain.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, plain.String())
		}
	}
	if strings.Contains(plain.String(), "\x1b[") {
		t.Errorf("colour without color=true")
	}
	if !strings.Contains(color.String(), ansiGreen+"+"+ansiReset) {
		t.Errorf("no colour with color=true:\n%q", color.String())
	}

	db := lxc("db", 0)
	var none bytes.Buffer
	q := mustCompute(t, Input{Stack: mkStack("demo", db), Observed: []drivers.ObservedInstance{applied("demo", db, drivers.StateRunning)}})
	if err := RenderText(&none, q, false); err != nil {
		t.Fatal(err)
	}
	if got := none.String(); got != "\nNo changes. Stack demo matches the file.\n" {
		t.Errorf("no-change text = %q", got)
	}
}

func TestWriteDOT(t *testing.T) {
	p := mustCompute(t, Input{Stack: mkStack("demo", lxc("web", 0, "db"), lxc("db", 0))})
	var b bytes.Buffer
	if err := WriteDOT(&b, p); err != nil {
		t.Fatal(err)
	}
	want := `digraph "berth demo" {
  rankdir=LR;
  node [shape=box, style=rounded, fontname="monospace"];
  "db" [label="+ create db\nlxc demo-db\nnew instance", color=darkgreen];
  "web" [label="+ create web\nlxc demo-web\nnew instance", color=darkgreen];
  "db" -> "web";
}
`
	if b.String() != want {
		t.Errorf("DOT:\n%s\nwant:\n%s", b.String(), want)
	}
}
