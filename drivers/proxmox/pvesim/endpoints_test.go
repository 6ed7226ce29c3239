package pvesim

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// concretePath fills a schema path with values that exist in a fresh
// simulator, so requests get past routing and node lookup.
func concretePath(s *Sim, p string) string {
	r := strings.NewReplacer("{node}", "pve", "{vmid}", "9000", "{storage}", "local",
		"{volume}", url.PathEscape("local:iso/debian-13.1.0-amd64-netinst.iso"),
		"{upid}", "UPID:pve:00000001:00000001:00000001:vzstart:100:root@pam:")
	return r.Replace(p)
}

// TestEveryEndpointValidates sends each of the 58 endpoints an unknown
// parameter and expects PVE's verification failure for it, plus the
// missing-parameter error for every required non-URI parameter.
func TestEveryEndpointValidates(t *testing.T) {
	s := newSim(t, Options{})
	for _, ep := range APISchema().Endpoints {
		t.Run(ep.Method+" "+ep.Path, func(t *testing.T) {
			p := url.Values{"zzbogus": {"1"}}
			var r *apiResp
			path := concretePath(s, ep.Path)
			r = call(t, s, ep.Method, path, p)
			wantErr(t, r, 400, "Parameter verification failed.")
			errs := r.errors(t)
			if errs["zzbogus"] != msgNotInSchema {
				t.Fatalf("errors %v", errs)
			}
			for _, prm := range ep.Params {
				if prm.Optional || strings.HasSuffix(prm.Name, "[n]") || strings.Contains(ep.Path, "{"+prm.Name+"}") {
					continue
				}
				if errs[prm.Name] != msgMissing {
					t.Errorf("required %s: %q", prm.Name, errs[prm.Name])
				}
			}
		})
	}
}

func TestQueryOverridesBodyAndURIConflict(t *testing.T) {
	s := newSim(t, Options{})
	waitOK(t, s, createCT(t, s, "100"))
	req, _ := http.NewRequest("PUT", s.URL()+"/nodes/pve/lxc/100/config?memory=1024", strings.NewReader("memory=2048"))
	req.Header.Set("Authorization", s.AuthHeader())
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	mustOK(t, send(t, s, req), nil)
	var c map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve/lxc/100/config", nil), &c)
	if c["memory"] != float64(1024) {
		t.Fatalf("memory %v: query must override body", c["memory"])
	}
	wantErr(t, call(t, s, "PUT", "/nodes/pve/lxc/100/config", form("vmid", "101", "memory", "64")), 400,
		"duplicate parameter (already defined in URI) with conflicting values!")
	// The same value as the URI is accepted.
	mustOK(t, call(t, s, "PUT", "/nodes/pve/lxc/100/config", form("vmid", "100", "memory", "64")), nil)
}

// TestNextIDRace shows that nextid reserves nothing: two clients that ask
// at the same time get the same id and one create loses, as on PVE.
func TestNextIDRace(t *testing.T) {
	s := newSim(t, Options{})
	var ids [2]string
	for i := range ids {
		mustOK(t, call(t, s, "GET", "/cluster/nextid", nil), &ids[i])
	}
	if ids[0] != ids[1] {
		t.Fatalf("ids %v", ids)
	}
	var wg sync.WaitGroup
	results := make([]*apiResp, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = call(t, s, "POST", "/nodes/pve/lxc", form("vmid", ids[i], "ostemplate", debianTmpl, "storage", "local-lvm"))
		}()
	}
	wg.Wait()
	ok, lost := 0, 0
	for _, r := range results {
		switch {
		case r.status == 200:
			ok++
		case r.status == 500 && r.reason == "CT 100 already exists on node 'pve'":
			lost++
		default:
			t.Fatalf("unexpected %d %q", r.status, r.reason)
		}
	}
	if ok != 1 || lost != 1 {
		t.Fatalf("ok %d lost %d", ok, lost)
	}
}

func TestMultiNode(t *testing.T) {
	s := newSim(t, Options{Nodes: 3, NodeCPUs: 4, NodeMemory: 8 << 30})
	var nodes []map[string]any
	mustOK(t, call(t, s, "GET", "/nodes", nil), &nodes)
	if len(nodes) != 3 || nodes[2]["node"] != "pve3" || nodes[2]["maxcpu"] != float64(4) || nodes[2]["maxmem"] != float64(8<<30) {
		t.Fatalf("nodes %v", nodes)
	}
	var upid string
	mustOK(t, call(t, s, "POST", "/nodes/pve2/lxc", form("vmid", "100", "ostemplate", debianTmpl, "storage", "local-lvm")), &upid)
	if !strings.HasPrefix(upid, "UPID:pve2:") {
		t.Fatalf("upid %s", upid)
	}
	waitOK(t, s, upid)
	// The guest lives on pve2: asking pve reads a config file that is not there.
	wantErr(t, call(t, s, "GET", "/nodes/pve/lxc/100/config", nil), 500, "Configuration file 'nodes/pve/lxc/100.conf' does not exist")
	wantErr(t, call(t, s, "POST", "/nodes/pve3/lxc", form("vmid", "100", "ostemplate", debianTmpl)), 500, "CT 100 already exists on node 'pve2'")
	// Task status is per node too.
	r := call(t, s, "GET", "/nodes/pve/tasks/"+upid+"/status", nil)
	wantErr(t, r, 400, "Parameter verification failed.")
	var tasks []map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve2/tasks", nil), &tasks)
	if len(tasks) != 1 || tasks[0]["upid"] != upid || tasks[0]["status"] != "OK" {
		t.Fatalf("node tasks %v", tasks)
	}
	var res []map[string]any
	mustOK(t, call(t, s, "GET", "/cluster/resources", form("type", "vm")), &res)
	for _, e := range res {
		if e["vmid"] == float64(100) && e["node"] != "pve2" {
			t.Fatalf("resource %v", e)
		}
	}
}

func TestLXCShutdownTimeout(t *testing.T) {
	s := newSim(t, Options{})
	waitOK(t, s, createCT(t, s, "100", "start", "1"))
	s.SetIgnoreShutdown(100, true)
	var upid string
	mustOK(t, call(t, s, "POST", "/nodes/pve/lxc/100/status/shutdown", form("timeout", "5")), &upid)
	if exit, _ := s.WaitTask(upid, 5*time.Second); exit != "command 'lxc-stop -n 100 --nokill --timeout 5' failed: exit code 1" {
		t.Fatalf("exit %q", exit)
	}
	mustOK(t, call(t, s, "POST", "/nodes/pve/lxc/100/status/shutdown", form("timeout", "5", "forceStop", "1")), &upid)
	waitOK(t, s, upid)
	// force=1 destroys a running container (stopping it first).
	waitOK(t, s, createCT(t, s, "101", "start", "1"))
	mustOK(t, call(t, s, "DELETE", "/nodes/pve/lxc/101", form("force", "1")), &upid)
	waitOK(t, s, upid)
}
