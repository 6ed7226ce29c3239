package pvesim

import (
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// The private control API lets a simulator started by berth-pvesim be
// steered from outside Go tests (demos, scripts). It lives outside
// /api2/json so it can never be mistaken for a PVE endpoint, and needs the
// seeded API token:
//
//	POST   /pvesim/faults        body: Fault as JSON (latency as Go duration string)
//	POST   /pvesim/task-faults   body: TaskFault as JSON
//	DELETE /pvesim/faults        clears every fault
//	GET    /pvesim/requests      request counts per "METHOD template"
//	POST   /pvesim/ignore-shutdown?vmid=100&ignore=1
type controlFault struct {
	Fault
	Latency string `json:"latency"`
}

func (s *Sim) control(req *http.Request, rel string) response {
	id, reason := s.authenticate(req, rel)
	if reason != "" {
		return response{status: 401, reason: reason, delay: s.opts.AuthFailureDelay}
	}
	if id.privs != nil {
		return errorResponse(permDenied("/, Sys.Modify"))
	}
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	switch req.Method + " " + rel {
	case "POST /pvesim/faults":
		var f controlFault
		if err := json.Unmarshal(body, &f); err != nil {
			return errorResponse(errf(400, "bad fault: %v", err))
		}
		if f.Latency != "" {
			d, err := time.ParseDuration(f.Latency)
			if err != nil {
				return errorResponse(errf(400, "bad latency: %v", err))
			}
			f.Fault.Latency = d
		}
		s.Inject(f.Fault)
		return dataResponse(nil)
	case "POST /pvesim/task-faults":
		var f TaskFault
		if err := json.Unmarshal(body, &f); err != nil {
			return errorResponse(errf(400, "bad task fault: %v", err))
		}
		s.InjectTask(f)
		return dataResponse(nil)
	case "DELETE /pvesim/faults":
		s.ClearFaults()
		return dataResponse(nil)
	case "GET /pvesim/requests":
		return dataResponse(s.Counts())
	case "POST /pvesim/ignore-shutdown":
		q := req.URL.Query()
		var vmid int
		if err := json.Unmarshal([]byte(q.Get("vmid")), &vmid); err != nil {
			return errorResponse(errf(400, "bad vmid"))
		}
		s.SetIgnoreShutdown(vmid, q.Get("ignore") == "1")
		return dataResponse(nil)
	}
	return errorResponse(errf(501, "Method '%s %s' not implemented", req.Method, rel))
}
