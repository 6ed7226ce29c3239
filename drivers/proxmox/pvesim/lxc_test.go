package pvesim

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

var upidPattern = regexp.MustCompile(`^UPID:pve:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:vzcreate:100:root@pam!berth:$`)

const debianTmpl = "local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst"

func createCT(t *testing.T, s *Sim, vmid string, extra ...string) string {
	t.Helper()
	p := form(append([]string{"vmid", vmid, "ostemplate", debianTmpl, "storage", "local-lvm"}, extra...)...)
	var upid string
	mustOK(t, call(t, s, "POST", "/nodes/pve/lxc", p), &upid)
	return upid
}

func TestLXCLifecycle(t *testing.T) {
	s := newSim(t, Options{})
	upid := createCT(t, s, "100", "hostname", "web", "net0", "name=eth0,bridge=vmbr0,ip=dhcp",
		"tags", "Web,prod;web", "description", "hello", "rootfs", "local-lvm:8", "memory", "1024")
	if !upidPattern.MatchString(upid) {
		t.Fatalf("upid %q", upid)
	}
	waitOK(t, s, upid)

	wantErr(t, call(t, s, "POST", "/nodes/pve/lxc", form("vmid", "100", "ostemplate", debianTmpl)),
		500, "CT 100 already exists on node 'pve'")

	var conf map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve/lxc/100/config", nil), &conf)
	want := map[string]any{
		"hostname": "web", "memory": float64(1024), "swap": float64(512), "unprivileged": float64(1),
		"arch": "amd64", "ostype": "debian", "rootfs": "local-lvm:vm-100-disk-0,size=8G",
		"tags": "prod;web", "description": "hello\n",
	}
	for k, v := range want {
		if conf[k] != v {
			t.Errorf("config[%s] = %#v, want %#v", k, conf[k], v)
		}
	}
	if !regexp.MustCompile(`^name=eth0,bridge=vmbr0,hwaddr=BC:24:11:[0-9A-F:]{8},ip=dhcp,type=veth$`).MatchString(conf["net0"].(string)) {
		t.Errorf("net0 = %v", conf["net0"])
	}
	if d, _ := conf["digest"].(string); len(d) != 40 {
		t.Errorf("digest %v", conf["digest"])
	}

	start := "/nodes/pve/lxc/100/status/start"
	wantErr(t, call(t, s, "POST", "/nodes/pve/lxc/100/status/stop", nil), 500, "CT 100 not running")
	wantErr(t, call(t, s, "POST", "/nodes/pve/lxc/100/status/reboot", nil), 500, "VM 100 not running")
	var up string
	mustOK(t, call(t, s, "POST", start, nil), &up)
	waitOK(t, s, up)
	wantErr(t, call(t, s, "POST", start, nil), 500, "CT 100 already running")

	var st map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve/lxc/100/status/current", nil), &st)
	if st["status"] != "running" || st["name"] != "web" || st["type"] != "lxc" || st["vmid"] != float64(100) {
		t.Fatalf("status/current %v", st)
	}
	if _, ok := st["template"]; ok {
		t.Fatalf("template key must be absent for non-templates: %v", st)
	}

	var ifs []map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve/lxc/100/interfaces", nil), &ifs)
	if len(ifs) != 2 || ifs[1]["name"] != "eth0" || !strings.HasPrefix(ifs[1]["inet"].(string), "10.") {
		t.Fatalf("interfaces %v", ifs)
	}

	wantErr(t, call(t, s, "DELETE", "/nodes/pve/lxc/100", nil), 500, "unable to destroy CT 100 - container is running")
	mustOK(t, call(t, s, "POST", "/nodes/pve/lxc/100/status/shutdown", form("timeout", "30")), &up)
	waitOK(t, s, up)
	mustOK(t, call(t, s, "DELETE", "/nodes/pve/lxc/100", form("purge", "1")), &up)
	waitOK(t, s, up)
	wantErr(t, call(t, s, "GET", "/nodes/pve/lxc/100/config", nil), 500, "Configuration file 'nodes/pve/lxc/100.conf' does not exist")
}

func TestLXCCreateLockAndAsyncTask(t *testing.T) {
	s := newSim(t, Options{TaskDurations: map[string]time.Duration{"vzcreate": time.Hour}})
	upid := createCT(t, s, "101")
	var st map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve/tasks/"+upid+"/status", nil), &st)
	if st["status"] != "running" || st["exitstatus"] != nil || st["type"] != "vzcreate" || st["id"] != "101" ||
		st["user"] != "root@pam" || st["tokenid"] != "berth" || st["node"] != "pve" {
		t.Fatalf("running task status %v", st)
	}
	// The config exists (lock: create) from the synchronous part on.
	wantErr(t, call(t, s, "POST", "/nodes/pve/lxc/101/status/start", nil), 500, "CT is locked (create)")
	wantErr(t, call(t, s, "POST", "/nodes/pve/lxc", form("vmid", "101", "ostemplate", debianTmpl)),
		500, "CT 101 already exists on node 'pve'")
	var res []map[string]any
	mustOK(t, call(t, s, "GET", "/cluster/resources", form("type", "vm")), &res)
	found := false
	for _, e := range res {
		if e["vmid"] == float64(101) {
			found = true
			if e["lock"] != "create" {
				t.Fatalf("resources entry %v", e)
			}
		}
	}
	if !found {
		t.Fatal("CT 101 missing from /cluster/resources")
	}
	// Stopping the task ends it with an error, like killing a worker.
	mustOK(t, call(t, s, "DELETE", "/nodes/pve/tasks/"+upid, nil), nil)
	mustOK(t, call(t, s, "GET", "/nodes/pve/tasks/"+upid+"/status", nil), &st)
	if st["status"] != "stopped" || st["exitstatus"] != "interrupted by signal" {
		t.Fatalf("stopped task %v", st)
	}
}

func TestTaskFaultsAndLog(t *testing.T) {
	s := newSim(t, Options{})
	s.FailTask("vzcreate", 102, "unable to create CT 102 - no space left on device")
	upid := createCT(t, s, "102")
	exit, _ := s.WaitTask(upid, time.Second)
	if exit != "unable to create CT 102 - no space left on device" {
		t.Fatalf("exit %q", exit)
	}
	var log []map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve/tasks/"+upid+"/log", nil), &log)
	last := log[len(log)-1]
	if last["t"] != "TASK ERROR: unable to create CT 102 - no space left on device" || last["n"] != float64(len(log)) {
		t.Fatalf("log %v", log)
	}
	// A failed create leaves no container behind.
	wantErr(t, call(t, s, "GET", "/nodes/pve/lxc/102/config", nil), 500, "Configuration file 'nodes/pve/lxc/102.conf' does not exist")

	s.InjectTask(TaskFault{Type: "vzcreate", Warnings: 2})
	upid = createCT(t, s, "103")
	if exit, _ := s.WaitTask(upid, time.Second); exit != "WARNINGS: 2" {
		t.Fatalf("exit %q", exit)
	}
	mustOK(t, call(t, s, "GET", "/nodes/pve/tasks/"+upid+"/log", form("start", "0", "limit", "500")), &log)
	if log[len(log)-1]["t"] != "TASK WARNINGS: 2" {
		t.Fatalf("log %v", log)
	}

	r := call(t, s, "GET", "/nodes/pve/tasks/UPID:pve:bogus/status", nil)
	wantErr(t, r, 400, "Parameter verification failed.")
	if !strings.HasPrefix(r.errors(t)["upid"], "unable to parse worker upid") {
		t.Fatalf("errors %s", r.raw)
	}
	r = call(t, s, "GET", "/nodes/pve/tasks/UPID:pve:00000001:00000001:00000001:vzstart:100:root@pam:/status", nil)
	wantErr(t, r, 400, "Parameter verification failed.")
	if r.errors(t)["upid"] != "no such task" {
		t.Fatalf("errors %s", r.raw)
	}
}

func TestRequestFaultsAndLog(t *testing.T) {
	s := newSim(t, Options{})
	s.FailNext("GET", "/nodes/{node}/lxc", 2, 500, "got timeout")
	wantErr(t, call(t, s, "GET", "/nodes/pve/lxc", nil), 500, "got timeout")
	wantErr(t, call(t, s, "GET", "/nodes/pve/lxc", nil), 500, "got timeout")
	mustOK(t, call(t, s, "GET", "/nodes/pve/lxc", nil), nil)
	if n := s.Count("GET", "/nodes/{node}/lxc"); n != 3 {
		t.Fatalf("count %d\n%s", n, countsString(s.Counts()))
	}
	s.LockTimeout("POST", "/nodes/pve/lxc/100/status/start", 100, 1, true)
	createCT(t, s, "100")
	wantErr(t, call(t, s, "POST", "/nodes/pve/lxc/100/status/start", nil), 500, "can't lock file '/var/lock/lxc/lock-100.conf' - got timeout")

	s.DropNext("", "/version", 1)
	req, _ := newReq("GET", s.URL()+"/version", s)
	if _, err := s.HTTPClient().Do(req); err == nil {
		t.Fatal("dropped connection produced a response")
	}
	mustOK(t, call(t, s, "GET", "/version", nil), nil)
}

func TestHungTaskAndActiveList(t *testing.T) {
	s := newSim(t, Options{})
	waitOK(t, s, createCT(t, s, "100"))
	s.HangTask("vzstart", 100)
	var upid string
	mustOK(t, call(t, s, "POST", "/nodes/pve/lxc/100/status/start", nil), &upid)
	var active, archive []map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve/tasks", form("source", "active")), &active)
	mustOK(t, call(t, s, "GET", "/nodes/pve/tasks", nil), &archive)
	if len(active) != 1 || active[0]["upid"] != upid || active[0]["status"] != nil {
		t.Fatalf("active tasks %v", active)
	}
	for _, e := range archive {
		if e["upid"] == upid {
			t.Fatalf("running task listed in the archive: %v", e)
		}
	}
	var log []map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve/tasks/"+upid+"/log", nil), &log)
	for _, l := range log {
		if strings.HasPrefix(l["t"].(string), "TASK ") {
			t.Fatalf("running task has a final log line: %v", log)
		}
	}
	var st map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve/lxc/100/status/current", nil), &st)
	if st["status"] != "stopped" {
		t.Fatalf("hung start changed the guest: %v", st)
	}
	mustOK(t, call(t, s, "DELETE", "/nodes/pve/tasks/"+upid, nil), nil)
	if exit, ok := s.WaitTask(upid, 5*time.Second); !ok || exit != "interrupted by signal" {
		t.Fatalf("stopped task exit %q", exit)
	}
}

func TestAuthFailureDelayApplied(t *testing.T) {
	s := newSim(t, Options{AuthFailureDelay: 3 * time.Second})
	req, _ := http.NewRequest("GET", s.URL()+"/nodes", nil)
	req.URL.Path = "/api2/json/nodes"
	resp := s.handle(req)
	if resp.status != 401 || resp.reason != "No ticket" || resp.delay != 3*time.Second || len(resp.body) != 0 {
		t.Fatalf("401 response %+v", resp)
	}
	req.Header.Set("Authorization", s.AuthHeader())
	if resp := s.handle(req); resp.status != 200 || resp.delay != 0 {
		t.Fatalf("authenticated response %d delay %v", resp.status, resp.delay)
	}
}

func TestCrashedTaskAndRequestParams(t *testing.T) {
	s := newSim(t, Options{})
	s.InjectTask(TaskFault{Type: "vzcreate", Crash: true})
	upid := createCT(t, s, "100", "password", "hunter22")
	var st map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve/tasks/"+upid+"/status", nil), &st)
	if st["exitstatus"] != "unexpected status" {
		t.Fatalf("crashed task %v", st)
	}
	var log []map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve/tasks/"+upid+"/log", nil), &log)
	for _, l := range log {
		if strings.HasPrefix(l["t"].(string), "TASK ") {
			t.Fatalf("crashed task has a final line: %v", log)
		}
	}
	var create *Request
	for _, r := range s.Requests() {
		if r.Method == "POST" && r.Template == "/nodes/{node}/lxc" {
			create = &r
		}
	}
	if create == nil || create.Params["vmid"] != "100" || create.Params["password"] != "********" || create.Status != 200 || create.Reason != "OK" {
		t.Fatalf("request log entry %+v", create)
	}
}
