package lxc

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/hostcmd"
)

// TestPendingCreateRecord: a container in the berth group without
// berth.json is berth's half-made container when a create-intent record
// of this provider names it: Observe reports it owned with
// IncompleteSpecHash and no spec (so the planner replaces it) and Delete
// destroys it. So is a directory lxc-ls does not list (no config: the
// create died before lxc-create finished) holding such a record; Delete
// removes that directory without lxc-destroy. Without a record, or with
// another provider's, either stays foreign: not reported as owned, and
// Delete refuses it.
func TestPendingCreateRecord(t *testing.T) {
	asRoot(t)
	dir := t.TempDir()
	ls := hostcmd.Recording{
		Argv: []string{"lxc-ls", "-P", dir, "-f", "-F", strings.Join(lsColumns, ",")},
		Stdout: "NAME      STATE   PID GROUPS          AUTOSTART IPV4 IPV6 \n" +
			"st-half   STOPPED -   berth, berth-st 0         -    -    \n" +
			"st-other  STOPPED -   berth, berth-st 0         -    -    \n" +
			"st-bare   STOPPED -   berth, berth-st 0         -    -    \n",
	}
	destroy := hostcmd.Recording{Argv: []string{"lxc-destroy", "-P", dir, "-n", "st-half", "-f"}}
	rep := hostcmd.NewReplayer(ls, destroy)
	d, err := New(Config{LXCPath: dir, Provider: "local", Cgroup: CgroupV1, SwapAccounting: boolp(true)}, rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"st-half", "st-other", "st-bare"} {
		os.MkdirAll(filepath.Join(dir, n), 0o755)
		os.WriteFile(filepath.Join(dir, n, "config"), []byte("lxc.uts.name = "+n+"\n"), 0o644)
	}
	// No config: a create that died before lxc-create finished (with a
	// partial rootfs), and a directory that is not berth's at all.
	for _, n := range []string{"st-early", "st-junk", "st-early-other"} {
		os.MkdirAll(filepath.Join(dir, n, "rootfs", "bin"), 0o755)
	}
	record := func(name, provider, instance string) {
		sc := sidecar{Version: 1, Provider: provider, Owner: drivers.Ownership{Stack: "st", Instance: instance, SpecHash: "abc", Spec: json.RawMessage(`{"memory":"64M"}`)}}
		data, _ := json.Marshal(sc)
		if err := os.WriteFile(d.pendingPath(name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	record("st-half", "local", "half")
	record("st-other", "elsewhere", "other")
	record("st-early", "local", "early")
	record("st-early-other", "elsewhere", "early-other")

	obs, err := d.Observe(context.Background(), "st")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*drivers.Ownership{}
	for _, o := range obs {
		got[o.Ref.Name] = o.Owner
		if o.Ref.Name == "st-early" && o.State != drivers.StateCreated {
			t.Errorf("st-early observed %s, want %s", o.State, drivers.StateCreated)
		}
	}
	if o := got["st-early"]; o == nil || o.Instance != "early" || o.SpecHash != IncompleteSpecHash || o.Spec != nil {
		t.Errorf("st-early (directory without config, create-intent record) observed with owner %+v, want st/early with %s and no spec", o, IncompleteSpecHash)
	}
	for _, n := range []string{"st-junk", "st-early-other"} {
		if _, ok := got[n]; ok {
			t.Errorf("%s (directory without config, not this provider's) observed: %+v", n, got[n])
		}
	}
	if o := got["st-half"]; o == nil || o.Stack != "st" || o.Instance != "half" || o.SpecHash != IncompleteSpecHash || o.Spec != nil {
		t.Errorf("st-half (create-intent record) observed with owner %+v, want st/half with %s and no spec", o, IncompleteSpecHash)
	}
	if o := got["st-other"]; o != nil {
		t.Errorf("st-other (another provider's record) observed as owned: %+v", o)
	}
	if o := got["st-bare"]; o != nil {
		t.Errorf("st-bare (no record) observed as owned: %+v", o)
	}

	if err := d.Delete(context.Background(), d.ref("st-bare")); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("Delete of a container without any record = %v, want a refusal", err)
	}
	if err := d.Delete(context.Background(), d.ref("st-other")); err == nil {
		t.Error("Delete of another provider's half-made container succeeded")
	}
	if err := d.Delete(context.Background(), d.ref("st-half")); err != nil {
		t.Fatalf("Delete of the half-made container: %v", err)
	}
	for _, n := range []string{"st-junk", "st-early-other"} {
		if err := d.Delete(context.Background(), d.ref(n)); err == nil {
			t.Errorf("Delete of %s (not this provider's) succeeded", n)
		}
	}
	if err := d.Delete(context.Background(), d.ref("st-early")); err != nil {
		t.Fatalf("Delete of the directory of a create that died early: %v", err)
	}
	if _, err := os.Lstat(d.dir("st-early")); !os.IsNotExist(err) {
		t.Errorf("st-early's directory survived the delete: %v", err)
	}
	for _, n := range []string{"st-junk", "st-early-other"} {
		if _, err := os.Stat(filepath.Join(dir, n, "rootfs")); err != nil {
			t.Errorf("%s was touched: %v", n, err)
		}
	}
	if _, err := os.Stat(d.pendingPath("st-other")); err != nil {
		t.Errorf("another provider's record was touched: %v", err)
	}
	want := [][]string{destroy.Argv}
	var destroys [][]string
	for _, c := range rep.Calls {
		if c[0] == "lxc-destroy" {
			destroys = append(destroys, c)
		}
	}
	if fmt.Sprint(destroys) != fmt.Sprint(want) {
		t.Errorf("lxc-destroy calls = %v, want only %v", destroys, want)
	}
}
