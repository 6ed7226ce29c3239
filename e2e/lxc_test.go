package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

type psRow struct {
	Instance string   `json:"instance"`
	Name     string   `json:"name"`
	State    string   `json:"state"`
	Health   string   `json:"health"`
	IPs      []string `json:"ips"`
}

func ps(t *testing.T, e *env, stack string) map[string]psRow {
	t.Helper()
	out := e.mustBerth(stack, "ps", "--json")
	var rows []psRow
	if err := json.Unmarshal([]byte(out[strings.Index(out, "["):]), &rows); err != nil {
		t.Fatalf("berth ps --json: %v\n%s", err, out)
	}
	m := map[string]psRow{}
	for _, r := range rows {
		m[r.Instance] = r
	}
	return m
}

// The quickstart flow on real LXC: up brings both containers up behind a
// health-gated dependency with their static IPs, a changed memory limit
// plans as an in-place update and applies without restarting the
// container, and down leaves nothing in the lxcpath.
func TestLXCUpUpdateDown(t *testing.T) {
	e := newEnv(t)
	e.withBridge()
	stack := "testdata/lxc-stack.yaml"
	e.vars["DB_MEMORY"] = "128M"
	e.project = "e2e" + randHex(3)
	db, web := e.project+"-db", e.project+"-web"

	e.mustBerth(stack, "up", "--yes", "--parallel", "4")
	got := containers(t, e.lxcpath)
	if strings.Join(got, " ") != db+" "+web {
		t.Fatalf("after up, lxc-ls lists %v, want %s %s", got, db, web)
	}
	if _, err := os.Stat("/sys/class/net/" + e.vars["BRIDGE"]); err != nil {
		t.Errorf("berth did not create the provider's bridge %s: %v", e.vars["BRIDGE"], err)
	}
	rows := ps(t, e, stack)
	subnet := e.vars["SUBNET"]
	for inst, ip := range map[string]string{"db": subnet + ".10", "web": subnet + ".11"} {
		r := rows[inst]
		if r.State != "running" || len(r.IPs) == 0 || r.IPs[0] != ip {
			t.Errorf("ps %s: %+v, want running with IP %s", inst, r, ip)
		}
	}
	if rows["db"].Health != "healthy" {
		t.Errorf("ps db health = %q, want healthy", rows["db"].Health)
	}
	pid := lxcValue(t, e.lxcpath, db, "lxc-info", "-pH")

	// Nothing to do on a second run.
	if out, code := e.berth(stack, "plan", "--detailed-exitcode"); code != 0 {
		t.Errorf("plan right after up: exit %d, want 0 (no changes)\n%s", code, out)
	}

	e.vars["DB_MEMORY"] = "256M"
	out, code := e.berth(stack, "plan", "--detailed-exitcode")
	if code != 2 || !strings.Contains(out, "memory") || !strings.Contains(out, "256M") {
		t.Errorf("plan after the memory change: exit %d, want 2 with a memory change\n%s", code, out)
	}
	var plan struct {
		Nodes []struct {
			Instance string   `json:"instance"`
			Actions  []string `json:"actions"`
			Action   string   `json:"action"`
			Restart  bool     `json:"restart"`
		} `json:"nodes"`
	}
	jout := e.mustBerth(stack, "plan", "--json")
	if err := json.Unmarshal([]byte(jout[strings.Index(jout, "{"):]), &plan); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, jout)
	}
	for _, n := range plan.Nodes {
		acts := strings.Join(append(n.Actions, n.Action), ",")
		switch n.Instance {
		case "db":
			if !strings.Contains(acts, "update") || n.Restart {
				t.Errorf("db node: actions %q restart %v, want an in-place update", acts, n.Restart)
			}
		default:
			if strings.Contains(acts, "update") || strings.Contains(acts, "create") || strings.Contains(acts, "delete") {
				t.Errorf("%s node: actions %q, want no change", n.Instance, acts)
			}
		}
	}

	e.mustBerth(stack, "up", "--yes")
	if got := lxcValue(t, e.lxcpath, db, "lxc-cgroup", "memory.limit_in_bytes"); got != "268435456" {
		t.Errorf("after the update, memory.limit_in_bytes = %s, want 268435456", got)
	}
	if got := lxcValue(t, e.lxcpath, db, "lxc-info", "-pH"); got != pid {
		t.Errorf("db init pid %s -> %s: the in-place update restarted the container", pid, got)
	}

	e.mustBerth(stack, "down", "--yes")
	if got := containers(t, e.lxcpath); len(got) != 0 {
		t.Errorf("after down, lxc-ls lists %v", got)
	}
	if left := dirEntries(e.lxcpath); len(left) != 0 {
		t.Errorf("after down, the lxcpath still holds %v", left)
	}
	if _, err := os.Stat("/sys/class/net/" + e.vars["BRIDGE"]); err == nil {
		t.Errorf("after down, the bridge %s berth created is still there", e.vars["BRIDGE"])
	}
	leftover := stateFiles(t, e.stateDir)
	if len(leftover) != 0 {
		t.Errorf("after down, the state dir still holds %v", leftover)
	}
}

// stateFiles lists regular files left under the state dir, lock files
// aside (an unlocked flock file holds no state).
func stateFiles(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".lock") {
			out = append(out, strings.TrimPrefix(p, dir+"/"))
		}
		return nil
	})
	return out
}

// A template that fails mid-up rolls back every container already made.
func TestLXCRollbackOnTemplateFailure(t *testing.T) {
	e := newEnv(t)
	broken := filepath.Join(t.TempDir(), "broken.tar.xz")
	if err := os.WriteFile(broken, []byte("this is not a tarball\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.vars["BROKEN"] = broken
	stack := "testdata/lxc-rollback.yaml"
	e.project = "rb" + randHex(3)
	out, code := e.berth(stack, "up", "--yes", "--parallel", "4")
	if code == 0 {
		t.Fatalf("up with a broken template succeeded:\n%s", out)
	}
	if !strings.Contains(out, "broken") || !strings.Contains(out, "template failed") {
		t.Errorf("the failure does not name the broken instance and its template:\n%s", out)
	}
	for _, n := range []string{"first", "second"} {
		if !strings.Contains(out, "delete "+e.project+"-"+n) {
			t.Errorf("no rollback delete of %s (was it created before the failure?):\n%s", n, out)
		}
	}
	if got := containers(t, e.lxcpath); len(got) != 0 {
		t.Errorf("after the failed up, lxc-ls lists %v: rollback left them\n%s", got, out)
	}
}

// A container berth did not make that holds an instance's name stops the
// plan with a clear error, and is left exactly as it was.
func TestLXCForeignNameClash(t *testing.T) {
	e := newEnv(t)
	e.project = "fc" + randHex(3)
	stack := "testdata/lxc-rollback.yaml" // instances first, second, broken
	foreign := e.project + "-first"
	base := filepath.Join(t.TempDir(), "base.conf")
	os.WriteFile(base, []byte("lxc.net.0.type = empty\n"), 0o644)
	os.MkdirAll(e.lxcpath, 0o755)
	if out, err := exec.Command("lxc-create", "-P", e.lxcpath, "-n", foreign, "-t", "busybox", "-f", base).CombinedOutput(); err != nil {
		t.Fatalf("lxc-create: %v: %s", err, out)
	}
	before, _ := os.ReadFile(filepath.Join(e.lxcpath, foreign, "config"))
	e.vars["BROKEN"] = "/nonexistent.tar.xz"
	out, code := e.berth(stack, "up", "--yes")
	if code == 0 || !strings.Contains(out, foreign) {
		t.Errorf("up over a foreign container: exit %d, want a failure naming %s\n%s", code, foreign, out)
	}
	if got := containers(t, e.lxcpath); strings.Join(got, " ") != foreign {
		t.Errorf("after the refused up, lxc-ls lists %v, want only the foreign %s", got, foreign)
	}
	after, _ := os.ReadFile(filepath.Join(e.lxcpath, foreign, "config"))
	if string(before) != string(after) {
		t.Errorf("the foreign container's config changed:\n%s", after)
	}
	if out, code := e.berth(stack, "down", "--yes"); code != 0 {
		t.Errorf("down with only a foreign container: exit %d\n%s", code, out)
	}
	if got := containers(t, e.lxcpath); strings.Join(got, " ") != foreign {
		t.Errorf("down touched the foreign container: lxc-ls lists %v", got)
	}
}
