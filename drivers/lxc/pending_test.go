package lxc

import (
	"context"
	"encoding/json"
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
// destroys it and drops the record. Without a record, or with another
// provider's, it stays foreign and Delete refuses it.
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
	record := func(name, provider, instance string) {
		sc := sidecar{Version: 1, Provider: provider, Owner: drivers.Ownership{Stack: "st", Instance: instance, SpecHash: "abc", Spec: json.RawMessage(`{"memory":"64M"}`)}}
		data, _ := json.Marshal(sc)
		if err := os.WriteFile(d.pendingPath(name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	record("st-half", "local", "half")
	record("st-other", "elsewhere", "other")

	obs, err := d.Observe(context.Background(), "st")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*drivers.Ownership{}
	for _, o := range obs {
		got[o.Ref.Name] = o.Owner
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
	if _, err := os.Stat(d.pendingPath("st-half")); !os.IsNotExist(err) {
		t.Errorf("the create-intent record survived the delete: %v", err)
	}
	if _, err := os.Stat(d.pendingPath("st-other")); err != nil {
		t.Errorf("another provider's record was touched: %v", err)
	}
}
