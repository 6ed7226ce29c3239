package pvesim

import (
	"net/http"
	"testing"
)

func TestReadOnlyTokenPermissions(t *testing.T) {
	s := newSim(t, Options{Tokens: []Token{{ID: "auditor@pve!ro", Secret: "ro-secret", Privs: AuditPrivs}}})
	waitOK(t, s, createCT(t, s, "100"))
	as := func(method, path string) *apiResp {
		req, _ := http.NewRequest(method, s.URL()+path, nil)
		req.Header.Set("Authorization", "PVEAPIToken=auditor@pve!ro=ro-secret")
		return send(t, s, req)
	}
	mustOK(t, as("GET", "/nodes/pve/lxc/100/config"), nil)
	mustOK(t, as("GET", "/cluster/resources"), nil)
	wantErr(t, as("POST", "/nodes/pve/lxc/100/status/start"), 403, "Permission check failed (/vms/100, VM.PowerMgmt)")
	wantErr(t, as("DELETE", "/nodes/pve/lxc/100"), 403, "Permission check failed (/vms/100, VM.Allocate)")
	wantErr(t, as("PUT", "/nodes/pve/lxc/100/config?memory=256"), 403,
		"Permission check failed (/vms/100, VM.Config.Disk|VM.Config.CPU|VM.Config.Memory|VM.Config.Network|VM.Config.Options)")
	wantErr(t, as("POST", "/nodes/pve/qemu?vmid=300"), 403, "Permission check failed (/vms/300, VM.Allocate)")
	wantErr(t, as("POST", "/nodes/pve/qemu/9000/clone?newid=301"), 403, "Permission check failed (/vms/9000, VM.Clone)")
	s.AddToken(Token{ID: "ops@pve!power", Secret: "p", Privs: append([]string{"VM.PowerMgmt"}, AuditPrivs...)})
	req, _ := http.NewRequest("POST", s.URL()+"/nodes/pve/lxc/100/status/start", nil)
	req.Header.Set("Authorization", "PVEAPIToken=ops@pve!power=p")
	var upid string
	mustOK(t, send(t, s, req), &upid)
	waitOK(t, s, upid)

	// A token without VM.Audit sees no guests at all (silently filtered).
	s.AddToken(Token{ID: "blind@pve!t", Secret: "b", Privs: []string{"Sys.Audit"}})
	req, _ = http.NewRequest("GET", s.URL()+"/cluster/resources?type=vm", nil)
	req.Header.Set("Authorization", "PVEAPIToken=blind@pve!t=b")
	var res []map[string]any
	mustOK(t, send(t, s, req), &res)
	if len(res) != 0 {
		t.Fatalf("unfiltered resources %v", res)
	}
}
