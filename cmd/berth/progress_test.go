package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/executor"
	"github.com/berth-dev/berth/planner"
)

var t0 = time.Date(2026, 11, 27, 1, 2, 3, 0, time.UTC)

// progressEvents is a small apply: db created, web fails and db is rolled back.
func progressEvents() []executor.Event {
	return []executor.Event{
		{Time: t0, NodeID: "db", Instance: "db", Action: planner.Create, Phase: executor.PhaseRunning},
		{Time: t0.Add(1500 * time.Millisecond), NodeID: "db", Instance: "db", Action: planner.Create, Phase: executor.PhaseDone},
		{Time: t0.Add(2 * time.Second), NodeID: "web", Instance: "web", Action: planner.Create, Phase: executor.PhaseRunning},
		{Time: t0.Add(3 * time.Second), NodeID: "web", Instance: "web", Action: planner.Create, Phase: executor.PhaseFailed, Err: errors.New("boom\nmore output")},
		{Time: t0.Add(4 * time.Second), NodeID: "db", Instance: "db", Action: planner.Create, Phase: executor.PhaseRolledBack, Detail: "deleted"},
	}
}

func TestPlainProgress(t *testing.T) {
	var buf bytes.Buffer
	p, err := newProgress(progressPlain, streams{Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	p.Start(&planner.Plan{})
	for _, e := range progressEvents() {
		p.Event(e)
	}
	p.Finish()
	want := `2026-11-27T01:02:03Z db create running
2026-11-27T01:02:04Z db create done
2026-11-27T01:02:05Z web create running
2026-11-27T01:02:06Z web create failed: boom …
2026-11-27T01:02:07Z db create rolled-back: deleted
`
	if buf.String() != want {
		t.Errorf("plain progress:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestJSONProgress(t *testing.T) {
	var buf bytes.Buffer
	p, err := newProgress(progressJSON, streams{Out: &buf})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range progressEvents() {
		p.Event(e)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("got %d lines, want one per event:\n%s", len(lines), buf.String())
	}
	var ev progressEvent
	if err := json.Unmarshal([]byte(lines[3]), &ev); err != nil {
		t.Fatal(err)
	}
	want := progressEvent{Time: t0.Add(3 * time.Second), Node: "web", Instance: "web", Action: "create", Phase: "failed", Error: "boom\nmore output"}
	if ev != want {
		t.Errorf("event 4 = %+v, want %+v", ev, want)
	}
}

func TestTTYProgressRedrawsInPlace(t *testing.T) {
	var buf bytes.Buffer
	p := newTTYProgress(streams{Out: &buf}, 0)
	p.now = func() time.Time { return t0.Add(10 * time.Second) }
	p.Start(&planner.Plan{Nodes: []*planner.Node{
		{ID: "db", Action: planner.Create},
		{ID: "cache", Action: planner.NoOp},
		{ID: "web", Action: planner.Create},
	}})
	first := buf.String()
	if strings.Contains(first, "cache") {
		t.Errorf("no-op node shown: %q", first)
	}
	if !strings.Contains(first, "db") || !strings.Contains(first, "waiting") {
		t.Errorf("first frame lacks waiting rows: %q", first)
	}
	for _, e := range progressEvents() {
		p.Event(e)
	}
	p.Finish()
	out := buf.String()
	// Every frame after the first moves the cursor up over the two rows.
	frames := strings.Count(out, "\x1b[2F")
	if frames != 6 { // 5 events + Finish
		t.Errorf("got %d in-place redraws, want 6:\n%q", frames, out)
	}
	last := out[strings.LastIndex(out, "\x1b[2F")+len("\x1b[2F"):]
	rows := strings.Split(strings.TrimSuffix(strings.ReplaceAll(last, "\x1b[2K", ""), "\n"), "\n")
	want := []string{
		"↩ db   create   rolled-back    4.0s  deleted",
		"✘ web  create   failed         1.0s  boom …",
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("last frame:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}

func TestTTYProgressColourAndWidth(t *testing.T) {
	var buf bytes.Buffer
	p := newTTYProgress(streams{Out: &buf, Color: true, Width: 20}, 0)
	p.Event(executor.Event{Time: t0, NodeID: "a-very-long-instance-name", Action: planner.Create, Phase: executor.PhaseDone})
	out := buf.String()
	if !strings.Contains(out, "\x1b[32m") || !strings.Contains(out, "\x1b[0m") {
		t.Errorf("done row not green: %q", out)
	}
	row := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(out, "\x1b[2K"), "\x1b[32m"), "\x1b[0m\n")
	if n := len([]rune(row)); n != 19 {
		t.Errorf("row %q is %d runes, want it cut to width-1 = 19", row, n)
	}
}

func TestProgressModes(t *testing.T) {
	cases := []struct {
		mode string
		tty  bool
		want string
	}{
		{"auto", true, "*main.ttyProgress"},
		{"auto", false, "*main.plainProgress"},
		{"", false, "*main.plainProgress"},
		{"tty", false, "*main.ttyProgress"},
		{"plain", true, "*main.plainProgress"},
		{"json", true, "*main.jsonProgress"},
	}
	for _, c := range cases {
		p, err := newProgress(c.mode, streams{Out: &bytes.Buffer{}, OutTTY: c.tty})
		if err != nil {
			t.Fatal(err)
		}
		if got := typeName(p); got != c.want {
			t.Errorf("newProgress(%q, tty=%t) = %s, want %s", c.mode, c.tty, got, c.want)
		}
	}
	if _, err := newProgress("fancy", streams{}); err == nil || !strings.Contains(err.Error(), "want auto, tty, plain or json") {
		t.Errorf("bad mode error = %v", err)
	}
}

func TestTTYProgressFoldsRowsThatDoNotFit(t *testing.T) {
	var buf bytes.Buffer
	p := newTTYProgress(streams{Out: &buf, Height: 5}, 0)
	var nodes []*planner.Node
	for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
		nodes = append(nodes, &planner.Node{ID: id, Action: planner.Create})
	}
	p.Start(&planner.Plan{Nodes: nodes})
	p.Event(executor.Event{Time: t0, NodeID: "a", Action: planner.Create, Phase: executor.PhaseDone})
	p.Event(executor.Event{Time: t0, NodeID: "b", Action: planner.Create, Phase: executor.PhaseRunning})
	p.Event(executor.Event{Time: t0, NodeID: "c", Action: planner.Create, Phase: executor.PhaseFailed})
	p.Finish()
	out := buf.String()
	last := out[strings.LastIndex(out, "\x1b[3F")+len("\x1b[3F"):]
	rows := strings.Split(strings.TrimSuffix(strings.ReplaceAll(last, "\x1b[2K", ""), "\n"), "\n")
	if len(rows) != 3 {
		t.Fatalf("last frame has %d lines, want 3 (height 5 - 2):\n%q", len(rows), last)
	}
	if !strings.HasPrefix(rows[0], "⠋ b") || !strings.HasPrefix(rows[1], "✘ c") {
		t.Errorf("busy rows not shown first: %q", rows)
	}
	if rows[2] != "  … 1 done, 3 waiting" {
		t.Errorf("fold line = %q", rows[2])
	}
}
