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
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/planner"
)

// Journal is the apply journal of one stack: `<stateDir>/<stack>.journal`,
// JSON lines, so a crash (kill -9, power loss) leaves a record of what
// was in flight: the lines that announce a create or delete are fsynced
// before the call runs (see durableBeforeReturn). It holds the last
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
	written uint64 // entries written, over the journal's life

	// Group commit: synced is the number of entries known durable.
	// One writer at a time (syncing) runs an fsync covering every entry
	// written when it began; the others wait on cond and find their
	// entry covered by it or by the next one.
	synced   uint64
	syncing  bool
	beginSeq uint64    // the current apply's begin line
	cond     sync.Cond // on mu
}

// JournalEntry is one line of the journal.
type JournalEntry struct {
	Time time.Time `json:"time"`
	// Type is begin, node-start, node-done, node-failed, node-skipped,
	// op-intent, op-start, op-done, op-failed, op-cancelled,
	// rollback-start, rollback-step or end.
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
	j := &Journal{path: p, f: f}
	j.cond.L = &j.mu
	return j, nil
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

// write appends one entry and, when durableBeforeReturn says so, waits
// until it is on disk.
func (j *Journal) write(e JournalEntry) {
	if seq := j.append(e); seq != 0 && durableBeforeReturn(e) {
		j.waitDurable(seq)
	}
}

// append writes one entry (to the page cache: it survives a kill -9 of
// berth, not a power loss) and returns its sequence number for
// waitDurable; 0 when the journal is nil or closed.
func (j *Journal) append(e JournalEntry) uint64 {
	if j == nil {
		return 0
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return 0
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
	return j.written
}

// waitDurable returns once entry seq is on disk (or the journal failed or
// was closed; a failure is reported by end). Concurrent callers share
// fsyncs: each fsync covers every entry written before it began.
func (j *Journal) waitDurable(seq uint64) {
	if j == nil || seq == 0 {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for j.synced < seq && j.f != nil {
		if j.syncing {
			j.cond.Wait()
			continue
		}
		j.syncing = true
		// Let writers that are ready to run append first, so that this
		// fsync covers them too (a burst of announced calls then shares
		// one fsync instead of two).
		j.mu.Unlock()
		runtime.Gosched()
		j.mu.Lock()
		upTo, f := j.written, j.f
		j.mu.Unlock()
		err := f.Sync()
		j.mu.Lock()
		j.syncing = false
		j.cond.Broadcast()
		if err != nil {
			if j.err == nil && j.f != nil {
				j.err = fmt.Errorf("journal %s: %w", j.path, err)
			}
			return
		}
		if upTo > j.synced {
			j.synced = upTo
		}
	}
}

// syncSoon starts making entry seq durable without waiting for it: the
// fsync runs while the caller waits for something else (a parallelism
// slot), and a later waitDurable(seq) finds it done.
func (j *Journal) syncSoon(seq uint64) {
	if j == nil || seq == 0 {
		return
	}
	go j.waitDurable(seq)
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
	host, _ := os.Hostname()
	var nodes []string
	for _, n := range p.Nodes {
		if n.Action != planner.NoOp {
			nodes = append(nodes, n.Action.String()+" "+n.ID)
		}
	}
	// The begin line is not waited for here: the first driver call
	// waits for it (beganDurable, or its own op-intent's fsync, which
	// covers it), so it shares that fsync.
	seq := j.append(JournalEntry{Type: "begin", Stack: p.Stack, Fingerprint: Fingerprint(p), PID: os.Getpid(), Host: host, Nodes: nodes})
	j.mu.Lock()
	defer j.mu.Unlock()
	j.beginSeq = seq
	return j.err
}

// durableBeforeReturn says whether write waits until the entry is on disk.
// The calls that can leave an object half made, without a complete
// ownership record, are creates and deletes (forward or rollback): they
// are announced by a line that is on disk before the call runs (op-intent
// for forward calls, see applier.call; op-start for rollback calls), so
// after a crash Recover names them. So are begin, failures, rollback
// steps and end. Everything else (op-start, op-done, op-cancelled,
// node-start, node-done, node-skipped) rides on the next fsync: it is in
// the file after a kill -9 of berth (the kernel has it), and losing it to
// a power failure only makes Recover report less detail about objects
// that keep their ownership record, or a call that finished (or never
// started) as possibly in flight, which is the safe side.
func durableBeforeReturn(e JournalEntry) bool {
	switch e.Type {
	case "op-start":
		return durableOp(e.Op)
	case "op-done", "op-cancelled", "node-start", "node-done", "node-skipped":
		return false
	}
	return true
}

// durableOp says whether a driver call can leave an object half made.
func durableOp(op string) bool {
	switch op {
	case "create", "delete", "rollback create", "rollback delete":
		return true
	}
	return false
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
	j.write(opEntry(typ, n, op, ref, err))
}

func opEntry(typ string, n *rnode, op string, ref drivers.ObjectRef, err error) JournalEntry {
	e := JournalEntry{Type: typ, Node: n.ID, Instance: n.Instance, Action: n.Action.String(), Op: op, Ref: &ref}
	if err != nil {
		e.Error = err.Error()
	}
	return e
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
	// Queued are creates and deletes announced (op-intent, on disk) while
	// waiting for a parallelism slot, with no op-start after: after a
	// kill -9 they never ran; after a power failure their op-start may
	// have been lost, so they may have run.
	Queued []JournalEntry
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
		fmt.Fprintf(&b, "; in flight: %s", opList(r.InFlight))
	}
	if len(r.Queued) > 0 {
		fmt.Fprintf(&b, "; queued, not known to have started: %s", opList(r.Queued))
	}
	if len(r.Done) > 0 {
		fmt.Fprintf(&b, "; done: %s", strings.Join(r.Done, ", "))
	}
	b.WriteString(". Objects carry ownership records, so this plan converges from what is live.")
	return b.String()
}

func opList(es []JournalEntry) string {
	var ops []string
	for _, e := range es {
		name := ""
		if e.Ref != nil {
			name = e.Ref.Name
		}
		ops = append(ops, fmt.Sprintf("%s %s (node %s)", e.Op, name, e.Node))
	}
	return strings.Join(ops, ", ")
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
		case "op-intent", "op-start":
			// An op-start after its op-intent promotes the call from
			// queued to in flight.
			k := opKey{e.Node, e.Op, name}
			if _, ok := open[k]; !ok {
				order = append(order, k)
			}
			open[k] = e
		case "op-done", "op-failed", "op-cancelled":
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
		e, ok := open[k]
		if !ok {
			continue
		}
		if e.Type == "op-intent" {
			r.Queued = append(r.Queued, e)
		} else {
			r.InFlight = append(r.InFlight, e)
		}
		delete(open, k)
	}
	return r, nil
}

// beganDurable waits until the begin line is on disk: every driver call
// runs after it (creates and deletes through their op-intent).
func (j *Journal) beganDurable() {
	if j == nil {
		return
	}
	j.mu.Lock()
	seq := j.beginSeq
	j.mu.Unlock()
	j.waitDurable(seq)
}
