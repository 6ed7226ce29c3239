package pvesim

import (
	"fmt"
	"time"
)

// Request is one entry of the simulator's request log.
type Request struct {
	Time     time.Time
	Method   string
	Path     string // relative to /api2/json, e.g. /nodes/pve/lxc/100/config
	Template string // schema path, e.g. /nodes/{node}/lxc/{vmid}/config ("" if unrouted)
	// Params are the query and body parameters as received (passwords
	// masked); nil when the request failed before parameter parsing.
	Params  map[string]string
	Status  int
	Reason  string
	Dropped bool
}

// Fault is an injected failure for requests matching Method and Path. Path
// is either a concrete path ("/nodes/pve/qemu/100/status/start") or a
// schema template ("/nodes/{node}/qemu/{vmid}/status/start"); Method ""
// matches any method. Times is how many matching calls it affects
// (0 = every call until ClearFaults).
type Fault struct {
	Method  string
	Path    string
	Times   int
	Status  int               // answer with this status and Message as reason...
	Message string            // ...e.g. 500 "got timeout"
	Errors  map[string]string // optional 400 errors map
	Drop    bool              // close the connection without answering
	Latency time.Duration     // delay before handling (combined with the above)
}

type fault struct {
	Fault
	left int
}

// Inject adds a fault; faults are matched in the order added.
func (s *Sim) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{Fault: f, left: f.Times})
}

// FailNext makes the next n calls of method+path fail with status and
// message (the message becomes the reason phrase).
func (s *Sim) FailNext(method, path string, n, status int, message string) {
	s.Inject(Fault{Method: method, Path: path, Times: n, Status: status, Message: message})
}

// DropNext makes the next n calls of method+path lose the connection.
func (s *Sim) DropNext(method, path string, n int) {
	s.Inject(Fault{Method: method, Path: path, Times: n, Drop: true})
}

// SetLatency delays every call of method+path by d (until ClearFaults).
func (s *Sim) SetLatency(method, path string, d time.Duration) {
	s.Inject(Fault{Method: method, Path: path, Latency: d})
}

// LockTimeout makes the next n calls of method+path fail the way a guest
// config lock held by another worker does: 500 "can't lock file
// '/var/lock/qemu-server/lock-<vmid>.conf' - got timeout".
func (s *Sim) LockTimeout(method, path string, vmid, n int, lxc bool) {
	dir := "qemu-server"
	if lxc {
		dir = "lxc"
	}
	s.FailNext(method, path, n, 500, fmt.Sprintf("can't lock file '/var/lock/%s/lock-%d.conf' - got timeout", dir, vmid))
}

// ClearFaults removes every injected request and task fault.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
	for k := range s.taskFaults {
		delete(s.taskFaults, k)
	}
}

func (s *Sim) takeFault(method, path, tmpl string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Method != "" && f.Method != method {
			continue
		}
		if f.Path != path && f.Path != tmpl {
			continue
		}
		out := f.Fault
		if f.Times > 0 {
			f.left--
			if f.left <= 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return &out
	}
	return nil
}

// TaskFault makes the next task of a worker type (qmstart, vzcreate, ...)
// for vmid (0 = any guest) fail with Error or Hang (never finish until
// stopped via DELETE /nodes/{node}/tasks/{upid}).
type TaskFault struct {
	Type  string
	VMID  int
	Error string
	Hang  bool
	// Warnings makes the task succeed with exitstatus "WARNINGS: n".
	Warnings int
	// Crash ends the task without a final log line, which PVE reports as
	// exitstatus "unexpected status".
	Crash bool
}

// InjectTask queues a task fault (consumed by the first matching task).
func (s *Sim) InjectTask(f TaskFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.taskFaults == nil {
		s.taskFaults = map[string][]TaskFault{}
	}
	s.taskFaults[f.Type] = append(s.taskFaults[f.Type], f)
}

// FailTask makes the next task of type for vmid (0 = any) end with
// "TASK ERROR: msg".
func (s *Sim) FailTask(typ string, vmid int, msg string) {
	s.InjectTask(TaskFault{Type: typ, VMID: vmid, Error: msg})
}

// HangTask makes the next task of type for vmid (0 = any) run forever.
func (s *Sim) HangTask(typ string, vmid int) {
	s.InjectTask(TaskFault{Type: typ, VMID: vmid, Hang: true})
}

func (s *Sim) takeTaskFault(typ string, vmid int) *TaskFault {
	list := s.taskFaults[typ]
	for i, f := range list {
		if f.VMID == 0 || f.VMID == vmid {
			s.taskFaults[typ] = append(list[:i:i], list[i+1:]...)
			return &f
		}
	}
	return nil
}

// Requests returns a copy of the request log.
func (s *Sim) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqlog...)
}

// ResetRequests empties the request log.
func (s *Sim) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqlog = nil
}

// Count returns how many logged requests match method ("" = any) and path
// (concrete or template, as for Fault).
func (s *Sim) Count(method, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.reqlog {
		if (method == "" || r.Method == method) && (r.Path == path || r.Template == path) {
			n++
		}
	}
	return n
}

// Counts returns the number of requests per "METHOD template" (or
// "METHOD path" for unrouted requests).
func (s *Sim) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, r := range s.reqlog {
		p := r.Template
		if p == "" {
			p = r.Path
		}
		out[r.Method+" "+p]++
	}
	return out
}

// SetIgnoreShutdown makes a guest ignore ACPI shutdown (QEMU) or a clean
// lxc-stop (LXC): shutdown tasks then fail with PVE's timeout error unless
// forceStop=1.
func (s *Sim) SetIgnoreShutdown(vmid int, ignore bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.guests[vmid]; g != nil {
		g.ignoreShutdown = ignore
	}
}

// SetPaused pauses or resumes a running QEMU VM (the suspend/resume
// endpoints are outside the simulated subset): status/current then shows
// qmpstatus "paused" and shutdown answers "VM is paused - cannot shutdown".
func (s *Sim) SetPaused(vmid int, paused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.guests[vmid]
	if g == nil || g.kind != "qemu" || g.status == "stopped" {
		return
	}
	if paused {
		g.status = "paused"
	} else {
		g.status = "running"
	}
}
