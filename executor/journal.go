package executor

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/planner"
)

// Journal is the apply journal of one stack: `<stateDir>/<stack>.journal`,
// JSON lines, each fsynced before the apply goes on, so a crash (kill -9,
// power loss) leaves a record of what was in flight. It holds the last
// apply only: Apply truncates it when it begins, so read the previous
// run's record with Recover first. It never holds secrets: only node IDs,
// actions, object references and error texts (manifest.Secret masks
// itself in any error text).
//
// A nil *Journal is valid and records nothing.
type Journal struct {
	path string

	mu      sync.Mutex
	f       *os.File
	err     error  // first write error
	written uint64 // entries written (under mu)

	// Group commit: an entry is durable once an fsync that began after
	// its write returned; concurrent writers share one fsync.
	syncMu sync.Mutex
	synced uint64 // entries known durable (under syncMu)
}

// JournalEntry is one line of the journal.
type JournalEntry struct {
	Time time.Time `json:"time"`
	// Type is begin, node-start, node-done, node-failed, node-skipped,
	// op-start, op-done, op-failed, rollback-start, rollback-step or end.
	Type        string             `json:"type"`
	Stack       string             `json:"stack,omitempty"`       // begin
	Fingerprint string             `json:"fingerprint,omitempty"` // begin
	PID         int                `json:"pid,omitempty"`         // begin
	Host        string             `json:"host,omitempty"`        // begin
	Nodes       []string           `json:"nodes,omitempty"`       // begin: "create web" per changing node
	Node        string             `json:"node,omitempty"`
	Instance    string             `json:"instance,omitempty"`
	Action      string             `json:"action,omitempty"`
	Op          string             `json:"op,omitempty"` // driver call of op-* and rollback-step
	Ref         *drivers.ObjectRef `json:"ref,omitempty"`
	Error       string             `json:"error,omitempty"`
	Detail      string             `json:"detail,omitempty"`
	Outcome     string             `json:"outcome,omitempty"` // end: applied, rolled-back, failed
}

// OpenJournal opens (creating the state dir and file if needed) the
// journal of a stack. The file is not truncated until an Apply begins.
func OpenJournal(stateDir, stack string) (*Journal, error) {
	if err := checkStackName(stack); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	p := filepath.Join(stateDir, stack+".journal")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return &Journal{path: p, f: f}, nil
}

// Path is the journal file.
func (j *Journal) Path() string { return j.path }

// Close closes the file.
func (j *Journal) Close() error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// Fingerprint identifies a plan in the journal: the planner's fingerprint
// when it has one, else a hash of the plan's JSON.
func Fingerprint(p *planner.Plan) string {
	if fp := p.Fingerprint(); fp != "" {
		return fp
	}
	b, _ := json.Marshal(p)
	sum := sha256.Sum256(b)
	return "plan-sha256:" + hex.EncodeToString(sum[:])
}

// write appends one entry; see durableBeforeReturn for which entries wait
// for their fsync (racing writers share one fsync).
func (j *Journal) write(e JournalEntry) {
	if j == nil {
		return
	}
	j.mu.Lock()
	if j.f == nil {
		j.mu.Unlock()
		return
	}
	e.Time = time.Now().UTC()
	b, err := json.Marshal(e)
	if err == nil {
		_, err = j.f.Write(append(b, '\n'))
	}
	if err != nil && j.err == nil {
		j.err = fmt.Errorf("journal %s: %w", j.path, err)
	}
	j.written++
	mine := j.written
	f := j.f
	j.mu.Unlock()
	if !durableBeforeReturn(e) {
		return
	}

	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	if j.synced >= mine {
		return
	}
	j.mu.Lock()
	upTo := j.written
	j.mu.Unlock()
	if err := f.Sync(); err != nil {
		j.mu.Lock()
		if j.err == nil && j.f != nil {
			j.err = fmt.Errorf("journal %s: %w", j.path, err)
		}
		j.mu.Unlock()
		return
	}
	j.synced = upTo
}

// begin truncates the journal and records the start of an apply.
func (j *Journal) begin(p *planner.Plan) error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	if j.f == nil {
		j.mu.Unlock()
		return fmt.Errorf("journal %s is closed", j.path)
	}
	if err := j.f.Truncate(0); err != nil {
		j.mu.Unlock()
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	if _, err := j.f.Seek(0, 0); err != nil {
		j.mu.Unlock()
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	j.err = nil
	j.mu.Unlock()
	j.syncMu.Lock()
	j.synced = 0
	j.syncMu.Unlock()
	j.mu.Lock()
	j.written = 0
	j.mu.Unlock()
	host, _ := os.Hostname()
	var nodes []string
	for _, n := range p.Nodes {
		if n.Action != planner.NoOp {
			nodes = append(nodes, n.Action.String()+" "+n.ID)
		}
	}
	j.write(JournalEntry{Type: "begin", Stack: p.Stack, Fingerprint: Fingerprint(p), PID: os.Getpid(), Host: host, Nodes: nodes})
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// durableBeforeReturn says whether write waits until the entry is on disk.
// The calls that can leave an object half made, without a complete
// ownership record, are creates and deletes (forward or rollback): their
// op-start is fsynced before the call runs, so after a crash Recover names
// them. So are begin, failures, rollback steps and end. Everything else
// (op-start of start/stop/update, op-done, node-start, node-done,
// node-skipped) rides on the next fsync: losing one to a crash only makes
// Recover report less detail about objects that keep their ownership
// record, or a finished call as in flight, which is the safe side.
func durableBeforeReturn(e JournalEntry) bool {
	switch e.Type {
	case "op-start":
		switch e.Op {
		case "create", "delete", "rollback create", "rollback delete":
			return true
		}
		return false
	case "op-done", "node-start", "node-done", "node-skipped":
		return false
	}
	return true
}

func (j *Journal) node(typ string, n *rnode, ref *drivers.ObjectRef, detail string) {
	if j == nil {
		return
	}
	e := JournalEntry{Type: typ, Node: n.ID, Instance: n.Instance, Action: n.Action.String(), Detail: detail}
	if typ == "node-failed" {
		e.Error, e.Detail = detail, ""
	}
	if ref != nil && ref.Name != "" {
		r := *ref
		e.Ref = &r
	}
	j.write(e)
}

func (j *Journal) op(typ string, n *rnode, op string, ref drivers.ObjectRef, err error) {
	if j == nil {
		return
	}
	e := JournalEntry{Type: typ, Node: n.ID, Instance: n.Instance, Action: n.Action.String(), Op: op, Ref: &ref}
	if err != nil {
		e.Error = err.Error()
	}
	j.write(e)
}

func (j *Journal) mark(typ, detail string) {
	j.write(JournalEntry{Type: typ, Detail: detail})
}

func (j *Journal) rollbackStep(s RollbackStep) {
	if j == nil {
		return
	}
	ref := s.Ref
	e := JournalEntry{Type: "rollback-step", Node: s.NodeID, Instance: s.Instance, Op: s.Op, Ref: &ref, Detail: s.Detail}
	if s.Err != nil {
		e.Error = s.Err.Error()
	}
	j.write(e)
}

func (j *Journal) end(outcome string, r *Result) error {
	if j == nil {
		return nil
	}
	e := JournalEntry{Type: "end", Outcome: outcome, Node: r.Failed}
	if r.Cause != nil {
		e.Error = r.Cause.Error()
	}
	j.write(e)
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// Recovery is what the journal says about an apply that never finished.
type Recovery struct {
	Stack       string
	Fingerprint string
	PID         int
	Host        string
	Started     time.Time
	// InFlight are the driver calls started and never finished: the
	// objects they name may be half made. A rollback call has Op
	// "rollback <op>".
	InFlight []JournalEntry
	// Done lists nodes that finished ("create web"); Failed those that
	// failed.
	Done   []string
	Failed []string
	// RollingBack is set when the crash hit during a rollback.
	RollingBack bool
	// Entries is the number of journal lines read (a torn last line is
	// skipped).
	Entries int
}

// String is a short report for the next `up`.
func (r *Recovery) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the previous apply of stack %s (pid %d on host %s, started %s) did not finish",
		r.Stack, r.PID, r.Host, r.Started.Format(time.RFC3339))
	if r.RollingBack {
		b.WriteString(" (it was rolling back)")
	}
	if len(r.InFlight) > 0 {
		var ops []string
		for _, e := range r.InFlight {
			name := ""
			if e.Ref != nil {
				name = e.Ref.Name
			}
			ops = append(ops, fmt.Sprintf("%s %s (node %s)", e.Op, name, e.Node))
		}
		fmt.Fprintf(&b, "; in flight: %s", strings.Join(ops, ", "))
	}
	if len(r.Done) > 0 {
		fmt.Fprintf(&b, "; done: %s", strings.Join(r.Done, ", "))
	}
	b.WriteString(". Objects carry ownership records, so this plan converges from what is live.")
	return b.String()
}

// Recover reads the journal left by the previous apply. It returns nil
// when there is none or that apply finished (its end marker is present).
func (j *Journal) Recover() (*Recovery, error) {
	if j == nil {
		return nil, nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	data, err := os.ReadFile(j.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("journal: %w", err)
	}
	return parseJournal(data)
}

func parseJournal(data []byte) (*Recovery, error) {
	var r *Recovery
	type opKey struct{ node, op, name string }
	open := map[opKey]JournalEntry{}
	var order []opKey
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e JournalEntry
		if err := json.Unmarshal(line, &e); err != nil {
			continue // a torn last write
		}
		if e.Type == "begin" {
			r = &Recovery{Stack: e.Stack, Fingerprint: e.Fingerprint, PID: e.PID, Host: e.Host, Started: e.Time}
			open, order = map[opKey]JournalEntry{}, nil
		}
		if r == nil {
			continue
		}
		r.Entries++
		name := ""
		if e.Ref != nil {
			name = e.Ref.Name
		}
		switch e.Type {
		case "op-start":
			k := opKey{e.Node, e.Op, name}
			open[k] = e
			order = append(order, k)
		case "op-done", "op-failed":
			delete(open, opKey{e.Node, e.Op, name})
		case "rollback-step":
			// A rollback call is journaled as op-start "rollback <op>"
			// before it runs and closed by its rollback-step line. A
			// recreate changes the reference, so close by node and op.
			for k := range open {
				if k.node == e.Node && k.op == "rollback "+e.Op {
					delete(open, k)
				}
			}
		case "node-done":
			r.Done = append(r.Done, e.Action+" "+e.Node)
		case "node-failed":
			r.Failed = append(r.Failed, e.Action+" "+e.Node)
		case "rollback-start":
			r.RollingBack = true
		case "end":
			return nil, nil
		}
	}
	if r == nil {
		return nil, nil
	}
	for _, k := range order {
		if e, ok := open[k]; ok {
			r.InFlight = append(r.InFlight, e)
			delete(open, k)
		}
	}
	return r, nil
}
