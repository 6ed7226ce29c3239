package pvesim

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// task is one PVE worker (fork_worker): UPID, status, log.
type task struct {
	upid    string
	node    string
	typ     string
	id      string
	user    string
	pid     int
	pstart  int
	start   time.Time
	end     time.Time
	running bool
	exit    string
	log     []string
	warns   int
	done    chan struct{}
}

func (t *task) logf(format string, args ...any) { t.log = append(t.log, fmt.Sprintf(format, args...)) }

func (t *task) warn(format string, args ...any) {
	t.warns++
	t.log = append(t.log, "WARN: "+fmt.Sprintf(format, args...))
}

// UPID layout of pve-common UPID.pm:
// UPID:node:PID(8 hex):PSTART(8 hex):STARTTIME(8 hex):type:id:user:
var upidRE = regexp.MustCompile(`^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s]+):([^:\s]*):([^:\s]+):$`)

// spawn starts a worker with s.mu held. work runs when the task's duration
// has elapsed (inline when it is zero) and its error becomes the task's
// exit status; undo runs instead of work when a task fault fails it.
func (s *Sim) spawn(node, typ string, vmid int, user string, work func(t *task) error, undo func()) string {
	s.pidSeq++
	now := time.Now()
	id := ""
	if vmid > 0 {
		id = strconv.Itoa(vmid)
	}
	t := &task{
		node: node, typ: typ, id: id, user: user, pid: s.pidSeq,
		pstart: int(now.Sub(s.started)/(10*time.Millisecond)) + 1000000,
		start:  now, running: true, done: make(chan struct{}),
	}
	t.upid = fmt.Sprintf("UPID:%s:%08X:%08X:%08X:%s:%s:%s:", node, t.pid, t.pstart, now.Unix(), typ, id, user)
	s.tasks[t.upid] = t
	s.taskList = append(s.taskList, t)

	f := s.takeTaskFault(typ, vmid)
	run := func() {
		if !t.running {
			return
		}
		var err error
		switch {
		case f != nil && f.Crash:
			if undo != nil {
				undo()
			}
			t.running = false
			t.end = time.Now()
			t.exit = "unexpected status"
			close(t.done)
			return
		case f != nil && f.Error != "":
			if undo != nil {
				undo()
			}
			err = fmt.Errorf("%s", f.Error)
		default:
			err = work(t)
			if f != nil {
				for i := 0; i < f.Warnings; i++ {
					t.warn("injected warning %d", i+1)
				}
			}
		}
		s.finish(t, err)
	}
	if f != nil && f.Hang {
		return t.upid
	}
	d, ok := s.opts.TaskDurations[typ]
	if !ok {
		d = s.opts.TaskDurations[""]
	}
	if d <= 0 {
		run()
		return t.upid
	}
	go func() {
		select {
		case <-time.After(d):
		case <-t.done:
			return
		case <-s.ctx.Done():
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		run()
	}()
	return t.upid
}

func (s *Sim) finish(t *task, err error) {
	t.running = false
	t.end = time.Now()
	switch {
	case err != nil:
		msg := strings.TrimRight(err.Error(), "\n")
		t.exit = msg
		t.log = append(t.log, "TASK ERROR: "+msg)
	case t.warns > 0:
		t.exit = fmt.Sprintf("WARNINGS: %d", t.warns)
		t.log = append(t.log, fmt.Sprintf("TASK WARNINGS: %d", t.warns))
	default:
		t.exit = "OK"
		t.log = append(t.log, "TASK OK")
	}
	close(t.done)
}

func (s *Sim) lookupTask(r *reqCtx) (*task, error) {
	upid := r.str("upid")
	if !upidRE.MatchString(upid) {
		return nil, paramErr("upid", "unable to parse worker upid '"+upid+"'")
	}
	t := s.tasks[upid]
	if t == nil || t.node != r.node {
		return nil, paramErr("upid", "no such task")
	}
	return t, nil
}

func (t *task) statusData() map[string]any {
	d := map[string]any{
		"upid": t.upid, "node": t.node, "pid": t.pid, "pstart": t.pstart,
		"starttime": t.start.Unix(), "type": t.typ, "id": t.id, "user": t.user,
		"status": "running",
	}
	if u, tok, ok := strings.Cut(t.user, "!"); ok {
		d["user"], d["tokenid"] = u, tok
	}
	if !t.running {
		d["status"] = "stopped"
		d["exitstatus"] = t.exit
	}
	return d
}

// GET /nodes/{node}/tasks/{upid}/status
func hTaskStatus(s *Sim, r *reqCtx) (any, error) {
	t, err := s.lookupTask(r)
	if err != nil {
		return nil, err
	}
	return t.statusData(), nil
}

// GET /nodes/{node}/tasks/{upid}/log
func hTaskLog(s *Sim, r *reqCtx) (any, error) {
	t, err := s.lookupTask(r)
	if err != nil {
		return nil, err
	}
	start, limit := r.int("start", 0), r.int("limit", 50)
	out := []map[string]any{}
	for i := start; i < len(t.log) && len(out) < limit; i++ {
		out = append(out, map[string]any{"n": i + 1, "t": t.log[i]})
	}
	return out, nil
}

// GET /nodes/{node}/tasks/{upid}: directory index.
func hTaskIndex(s *Sim, r *reqCtx) (any, error) {
	if _, err := s.lookupTask(r); err != nil {
		return nil, err
	}
	return []map[string]any{{"name": "log"}, {"name": "status"}}, nil
}

// DELETE /nodes/{node}/tasks/{upid}: stop a running task.
func hTaskStop(s *Sim, r *reqCtx) (any, error) {
	t, err := s.lookupTask(r)
	if err != nil {
		return nil, err
	}
	if t.running {
		s.finish(t, fmt.Errorf("interrupted by signal"))
	}
	return nil, nil
}

func (t *task) listEntry() map[string]any {
	d := map[string]any{
		"upid": t.upid, "node": t.node, "pid": t.pid, "pstart": t.pstart,
		"starttime": t.start.Unix(), "type": t.typ, "id": t.id, "user": t.user,
	}
	if !t.running {
		d["endtime"] = t.end.Unix()
		d["status"] = t.exit
	}
	return d
}

// GET /nodes/{node}/tasks
func hNodeTasks(s *Sim, r *reqCtx) (any, error) {
	limit, start := r.int("limit", 50), r.int("start", 0)
	vmid := r.str("vmid")
	src := r.str("source")
	out := []map[string]any{}
	skipped := 0
	for i := len(s.taskList) - 1; i >= 0; i-- {
		t := s.taskList[i]
		if t.node != r.node || (vmid != "" && t.id != vmid) || (r.str("typefilter") != "" && t.typ != r.str("typefilter")) {
			continue
		}
		if (src == "" || src == "archive") && t.running {
			continue
		}
		if src == "active" && !t.running {
			continue
		}
		if r.flag("errors") && (t.running || t.exit == "OK") {
			continue
		}
		if skipped < start {
			skipped++
			continue
		}
		if len(out) >= limit {
			break
		}
		out = append(out, t.listEntry())
	}
	return out, nil
}

// GET /cluster/tasks
func hClusterTasks(s *Sim, r *reqCtx) (any, error) {
	out := []map[string]any{}
	for i := len(s.taskList) - 1; i >= 0 && len(out) < 50; i-- {
		out = append(out, s.taskList[i].listEntry())
	}
	return out, nil
}

// WaitTask blocks until the task finishes (or timeout) and returns its exit
// status; for tests that use raw HTTP.
func (s *Sim) WaitTask(upid string, timeout time.Duration) (string, bool) {
	s.mu.Lock()
	t := s.tasks[upid]
	s.mu.Unlock()
	if t == nil {
		return "", false
	}
	select {
	case <-t.done:
	case <-time.After(timeout):
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return t.exit, true
}
