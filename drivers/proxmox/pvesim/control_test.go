package pvesim

import (
	"net/http"
	"strings"
	"testing"
)

func TestControlAPI(t *testing.T) {
	s := newSim(t, Options{})
	post := func(path, body string) *apiResp {
		req, _ := http.NewRequest("POST", "https://"+s.Addr()+path, strings.NewReader(body))
		req.Header.Set("Authorization", s.AuthHeader())
		req.Header.Set("Content-Type", "application/json")
		return send(t, s, req)
	}
	mustOK(t, post("/pvesim/faults", `{"Method":"GET","Path":"/version","Times":1,"Status":503,"Message":"service unavailable","latency":"1ms"}`), nil)
	wantErr(t, call(t, s, "GET", "/version", nil), 503, "service unavailable")
	mustOK(t, call(t, s, "GET", "/version", nil), nil)
	mustOK(t, post("/pvesim/task-faults", `{"Type":"vzcreate","Error":"disk full"}`), nil)
	upid := createCT(t, s, "100")
	if exit, _ := s.WaitTask(upid, 5e9); exit != "disk full" {
		t.Fatalf("exit %q", exit)
	}
	req, _ := http.NewRequest("GET", "https://"+s.Addr()+"/pvesim/requests", nil)
	req.Header.Set("Authorization", s.AuthHeader())
	var counts map[string]int
	mustOK(t, send(t, s, req), &counts)
	if counts["GET /version"] != 2 || counts["POST /nodes/{node}/lxc"] != 1 {
		t.Fatalf("counts %v", counts)
	}
	req, _ = http.NewRequest("GET", "https://"+s.Addr()+"/pvesim/requests", nil)
	wantErr(t, send(t, s, req), 401, "No ticket")
}
