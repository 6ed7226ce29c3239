package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// crunPid reads a container's init pid straight from the runtime.
func crunPid(t *testing.T, runtime, stateDir, name string) int {
	t.Helper()
	out, err := exec.Command(runtime, "--root", stateDir, "state", name).Output()
	if err != nil {
		t.Fatalf("%s state %s: %v", runtime, name, err)
	}
	var st struct {
		Pid int `json:"pid"`
	}
	json.Unmarshal(out, &st)
	return st.Pid
}

// The OCI flow through the berth binary on real crun and runc: a runc
// one-shot gates a crun web server (condition: completed needs the exit
// code), exec and logs reach the containers, a memory change applies in
// place without restarting web, a second up leaves the completed one-shot
// alone, an environment change restarts web with the new value, and down
// leaves no container, bundle or mount.
func TestOCIUpUpdateDown(t *testing.T) {
	requireRuntime(t, "crun")
	requireRuntime(t, "runc")
	root := t.TempDir()
	ociRoot := filepath.Join(root, "oci")
	e := &env{t: t, stateDir: filepath.Join(root, "state"), vars: map[string]string{
		"ROOTFS": mkrootfs(t, root), "BERTH_OCI_ROOT": ociRoot, "WEB_MEMORY": "64M",
	}}
	t.Cleanup(func() {
		crunCleanup(root)
		exec.Command("sh", "-c", "runc --root "+ociRoot+"/state/runc list -q | xargs -r -n1 runc --root "+ociRoot+"/state/runc delete -f").Run()
	})
	stack := "testdata/oci-stack.yaml"

	e.mustBerth(stack, "up", "--yes")
	rows := ps(t, e, stack)
	if r := rows["migrate"]; r.State != "exited (0)" && r.State != "exited" {
		t.Errorf("ps migrate: %+v, want exited (0)", r)
	}
	if r := rows["web"]; r.State != "running" || r.Health != "healthy" {
		t.Errorf("ps web: %+v, want running and healthy", r)
	}
	if out := e.mustBerth(stack, "exec", "web", "--", "wget", "-q", "-O-", "http://127.0.0.1:8080/index.html"); !strings.Contains(out, "hello e2e") {
		t.Errorf("exec web: %q", out)
	}
	if out := e.mustBerth(stack, "logs", "migrate"); !strings.Contains(out, "migrated") {
		t.Errorf("logs migrate: %q", out)
	}
	crunState := filepath.Join(ociRoot, "state", "crun")
	pid := crunPid(t, "crun", crunState, "e2eoci-web")

	e.vars["WEB_MEMORY"] = "96M"
	plan := e.mustBerth(stack, "plan")
	if !strings.Contains(plan, "update in-place web") || strings.Contains(plan, "start migrate") {
		t.Errorf("plan after a memory change:\n%s", plan)
	}
	e.mustBerth(stack, "up", "--yes")
	if got := crunPid(t, "crun", crunState, "e2eoci-web"); got != pid {
		t.Errorf("the in-place update restarted web: pid %d -> %d", pid, got)
	}
	if out := e.mustBerth(stack, "plan"); !strings.Contains(out, "No changes") {
		t.Errorf("plan after up: %s", out)
	}

	// A restart-kind change: config.json is rewritten and web is created
	// again from its bundle.
	e.vars["GREETING"] = "again"
	if plan := e.mustBerth(stack, "plan"); !strings.Contains(plan, "restart web") {
		t.Errorf("plan after an environment change:\n%s", plan)
	}
	e.mustBerth(stack, "up", "--yes")
	if out := e.mustBerth(stack, "exec", "web", "--", "wget", "-q", "-O-", "http://127.0.0.1:8080/index.html"); !strings.Contains(out, "hello again") {
		t.Errorf("exec web after the restart update: %q", out)
	}

	e.mustBerth(stack, "down", "--yes")
	for _, rt := range []string{"crun", "runc"} {
		out, _ := exec.Command(rt, "--root", filepath.Join(ociRoot, "state", rt), "list", "-q").Output()
		if strings.TrimSpace(string(out)) != "" {
			t.Errorf("%s containers left after down: %s", rt, out)
		}
		if left, _ := filepath.Glob(filepath.Join(ociRoot, "bundles", rt, "*")); len(left) > 0 {
			t.Errorf("%s bundles left after down: %v", rt, left)
		}
	}
}
