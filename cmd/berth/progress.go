package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/planner"
)

// progress shows the executor's events as an apply runs. Event may be
// called from many goroutines at once.
type progress interface {
	// Start announces the plan about to be applied.
	Start(p *planner.Plan)
	Event(e executor.Event)
	// Finish draws the final state and stops any redrawing.
	Finish()
}

// Progress modes of --progress.
const (
	progressAuto  = "auto"
	progressTTY   = "tty"
	progressPlain = "plain"
	progressJSON  = "json"
)

// newProgress picks the renderer for mode; auto means tty when stdout is a
// terminal, plain lines otherwise.
func newProgress(mode string, st streams) (progress, error) {
	switch mode {
	case "", progressAuto:
		if st.OutTTY {
			return newTTYProgress(st, 100*time.Millisecond), nil
		}
		return &plainProgress{w: st.Out}, nil
	case progressTTY:
		return newTTYProgress(st, 100*time.Millisecond), nil
	case progressPlain:
		return &plainProgress{w: st.Out}, nil
	case progressJSON:
		return &jsonProgress{enc: json.NewEncoder(st.Out)}, nil
	}
	return nil, fmt.Errorf("--progress %q: want auto, tty, plain or json", mode)
}

// phaseName is the word a phase is shown as.
func phaseName(p executor.Phase) string { return p.String() }

func eventTime(e executor.Event) time.Time {
	if e.Time.IsZero() {
		return time.Now()
	}
	return e.Time
}

func eventLabel(e executor.Event) string {
	if e.NodeID != "" {
		return e.NodeID
	}
	return e.Instance
}

// plainProgress prints one timestamped line per event, for logs and CI:
// "2026-11-27T01:02:03Z web create running".
type plainProgress struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *plainProgress) Start(*planner.Plan) {}
func (p *plainProgress) Finish()             {}

func (p *plainProgress) Event(e executor.Event) {
	if e.Action == planner.NoOp {
		return // an untouched instance waiting on a dependency is noise
	}
	line := fmt.Sprintf("%s %s %s %s", eventTime(e).UTC().Format(time.RFC3339), eventLabel(e), e.Action, phaseName(e.Phase))
	if e.Detail != "" {
		line += ": " + e.Detail
	}
	if e.Err != nil {
		line += ": " + oneLine(e.Err.Error())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, line)
}

// jsonProgress prints one JSON object per event.
type jsonProgress struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// progressEvent is the JSON form of an executor event.
type progressEvent struct {
	Time     time.Time `json:"time"`
	Node     string    `json:"node"`
	Instance string    `json:"instance"`
	Action   string    `json:"action"`
	Phase    string    `json:"phase"`
	Detail   string    `json:"detail,omitempty"`
	Error    string    `json:"error,omitempty"`
}

func (p *jsonProgress) Start(*planner.Plan) {}
func (p *jsonProgress) Finish()             {}

func (p *jsonProgress) Event(e executor.Event) {
	ev := progressEvent{Time: eventTime(e).UTC(), Node: e.NodeID, Instance: e.Instance, Action: e.Action.String(), Phase: phaseName(e.Phase), Detail: e.Detail}
	if e.Err != nil {
		ev.Error = e.Err.Error()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.enc.Encode(ev)
}

// ttyProgress is the live view: one line per plan node with a spinner,
// its phase and elapsed time, redrawn in place.
type ttyProgress struct {
	mu     sync.Mutex
	w      io.Writer
	color  bool
	width  int
	height int // rows available; more actions than fit are summarised
	now    func() time.Time

	rows  []*progressRow
	byID  map[string]*progressRow
	drawn int // lines drawn by the previous frame
	frame int

	tick   time.Duration
	stop   chan struct{}
	ticker sync.WaitGroup
}

type progressRow struct {
	id             string
	action         planner.Action
	phase          executor.Phase
	started, ended time.Time
	note           string
}

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// newTTYProgress makes a live view on st.Out redrawn every tick (0: only
// on events, as the tests use it).
func newTTYProgress(st streams, tick time.Duration) *ttyProgress {
	return &ttyProgress{w: st.Out, color: st.Color, width: st.Width, height: st.Height, now: time.Now, byID: map[string]*progressRow{}, tick: tick}
}

func (p *ttyProgress) Start(pl *planner.Plan) {
	p.mu.Lock()
	for _, n := range pl.Nodes {
		if n.Action == planner.NoOp {
			continue
		}
		p.row(n.ID, n.Action)
	}
	p.draw()
	p.mu.Unlock()
	if p.tick > 0 {
		p.stop = make(chan struct{})
		p.ticker.Add(1)
		go func() {
			defer p.ticker.Done()
			t := time.NewTicker(p.tick)
			defer t.Stop()
			for {
				select {
				case <-p.stop:
					return
				case <-t.C:
					p.mu.Lock()
					p.frame++
					p.draw()
					p.mu.Unlock()
				}
			}
		}()
	}
}

func (p *ttyProgress) row(id string, a planner.Action) *progressRow {
	r, ok := p.byID[id]
	if !ok {
		r = &progressRow{id: id, action: a, phase: executor.PhaseWaiting}
		p.byID[id] = r
		p.rows = append(p.rows, r)
	}
	return r
}

func (p *ttyProgress) Event(e executor.Event) {
	if e.Action == planner.NoOp {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.row(eventLabel(e), e.Action)
	t := eventTime(e)
	switch e.Phase {
	case executor.PhaseRunning, executor.PhaseRollingBack:
		r.started, r.ended = t, time.Time{}
	case executor.PhaseDone, executor.PhaseFailed, executor.PhaseSkipped, executor.PhaseRolledBack:
		r.ended = t
	}
	r.phase = e.Phase
	r.note = e.Detail
	if e.Err != nil {
		r.note = oneLine(e.Err.Error())
	}
	p.draw()
}

func (p *ttyProgress) Finish() {
	if p.stop != nil {
		close(p.stop)
		p.ticker.Wait()
		p.stop = nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw()
}

// draw rewrites the block of rows in place: move to the first row drawn
// last time, then clear and print each row. Cursor movement cannot reach
// lines scrolled off the screen, so when there are more actions than
// terminal rows, finished and waiting ones are folded into one count line.
func (p *ttyProgress) draw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dF", p.drawn)
	}
	rows, folded := p.visibleRows()
	width := 0
	for _, r := range rows {
		width = max(width, utf8.RuneCountInString(r.id))
	}
	lines := 0
	for _, r := range rows {
		b.WriteString("\x1b[2K")
		b.WriteString(p.line(r, width))
		b.WriteByte('\n')
		lines++
	}
	if folded != "" {
		b.WriteString("\x1b[2K")
		b.WriteString(folded)
		b.WriteByte('\n')
		lines++
	}
	// Keep the block as tall as before so no stale line stays below it.
	for ; lines < p.drawn; lines++ {
		b.WriteString("\x1b[2K\n")
	}
	p.drawn = lines
	io.WriteString(p.w, b.String())
}

// visibleRows picks the rows that fit the terminal and summarises the rest.
func (p *ttyProgress) visibleRows() ([]*progressRow, string) {
	limit := p.height - 2 // keep the cursor line and one spare
	if p.height <= 0 || len(p.rows) <= limit {
		return p.rows, ""
	}
	if limit < 2 {
		limit = 2
	}
	var shown []*progressRow
	counts := map[string]int{}
	for _, r := range p.rows {
		busy := r.phase != executor.PhaseWaiting && r.phase != executor.PhaseDone && r.phase != executor.PhaseSkipped
		if busy && len(shown) < limit-1 {
			shown = append(shown, r)
			continue
		}
		counts[phaseName(r.phase)]++
	}
	var parts []string
	for _, ph := range []executor.Phase{executor.PhaseDone, executor.PhaseRunning, executor.PhaseHealthWait, executor.PhaseWaiting,
		executor.PhaseSkipped, executor.PhaseFailed, executor.PhaseRollingBack, executor.PhaseRolledBack} {
		if n := counts[phaseName(ph)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, phaseName(ph)))
		}
	}
	return shown, fmt.Sprintf("  … %s", strings.Join(parts, ", "))
}

func (p *ttyProgress) line(r *progressRow, idWidth int) string {
	mark, colour := "·", ""
	switch r.phase {
	case executor.PhaseRunning, executor.PhaseHealthWait, executor.PhaseRollingBack:
		mark, colour = spinnerFrames[p.frame%len(spinnerFrames)], "\x1b[36m"
	case executor.PhaseDone:
		mark, colour = "✔", "\x1b[32m"
	case executor.PhaseFailed:
		mark, colour = "✘", "\x1b[31m"
	case executor.PhaseSkipped:
		mark, colour = "-", "\x1b[2m"
	case executor.PhaseRolledBack:
		mark, colour = "↩", "\x1b[33m"
	}
	elapsed := ""
	if !r.started.IsZero() {
		end := r.ended
		if end.IsZero() {
			end = p.now()
		}
		elapsed = fmtElapsed(end.Sub(r.started))
	}
	text := fmt.Sprintf("%s %-*s  %-7s  %-12s %6s", mark, idWidth, r.id, r.action, phaseName(r.phase), elapsed)
	if r.note != "" {
		text += "  " + r.note
	}
	if p.width > 1 && utf8.RuneCountInString(text) > p.width-1 {
		text = string([]rune(text)[:p.width-1])
	}
	if p.color && colour != "" {
		text = colour + text + "\x1b[0m"
	}
	return text
}

// fmtElapsed renders a duration the way progress shows it: 0.4s, 12.3s, 2m05s.
func fmtElapsed(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// oneLine keeps the first line of a message (a RunError prints the
// command's output on the following lines).
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
