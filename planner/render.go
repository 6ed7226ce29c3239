package planner

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
)

// ANSI colours of the human view.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
	ansiDim    = "\x1b[2m"
)

type painter bool

func (c painter) paint(code, s string) string {
	if !c || s == "" {
		return s
	}
	return code + s + ansiReset
}

// RenderText writes the human view of a plan, Terraform-like: one block
// per action with its reason, the symbol (+ create, ~ update in-place,
// -/+ replace, - delete, > start, ■ stop), field diffs marked with what
// they cost, then a summary line. It is rendered from the JSON form, so a
// saved plan renders the same. ANSI colour only when color is true (the
// caller decides: TTY and NO_COLOR).
func RenderText(w io.Writer, p *Plan, color bool) error {
	bw := bufio.NewWriter(w)
	renderJSONPlan(bw, toJSON(p), painter(color))
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("render plan: %w", err)
	}
	return nil
}

func actionColor(a string) string {
	switch a {
	case "create", "start":
		return ansiGreen
	case "update", "stop":
		return ansiYellow
	case "replace", "delete":
		return ansiRed
	}
	return ansiDim
}

func renderJSONPlan(w *bufio.Writer, jp *jsonPlan, c painter) {
	changes, drifted := 0, 0
	for _, n := range jp.Nodes {
		if n.Action != "no-op" {
			changes++
		}
		if n.Drift {
			drifted++
		}
	}
	if changes > 0 {
		where := ""
		if jp.File != "" {
			where = " (" + jp.File + ")"
		}
		fmt.Fprintf(w, "berth will perform the following actions on stack %s%s:\n", c.paint(ansiBold, jp.Stack), where)
	}
	for _, n := range jp.Nodes {
		// Kept orphans are shown so `up --keep-orphans` says what it
		// leaves behind; other no-ops are not.
		if n.Action == "no-op" && !(n.Orphan && jp.Mode == "up") {
			continue
		}
		renderNode(w, &n, c)
	}
	w.WriteString("\n")
	if changes == 0 {
		switch jp.Mode {
		case "down":
			fmt.Fprintf(w, "No changes. Stack %s owns no objects.\n", jp.Stack)
		case "stop":
			fmt.Fprintf(w, "No changes. Nothing of stack %s is running.\n", jp.Stack)
		default:
			fmt.Fprintf(w, "No changes. Stack %s matches the file.\n", jp.Stack)
		}
		return
	}
	s := jp.Summary
	line := fmt.Sprintf("Plan: %d to create, %d to update, %d to replace, %d to delete", s["create"], s["update"], s["replace"], s["delete"])
	if s["start"] > 0 {
		line += fmt.Sprintf(", %d to start", s["start"])
	}
	if s["stop"] > 0 {
		line += fmt.Sprintf(", %d to stop", s["stop"])
	}
	fmt.Fprintf(w, "%s.\n", c.paint(ansiBold, line))
	if drifted > 0 {
		msg := "Drift: 1 instance was changed outside berth; the plan puts it back as the file says."
		if drifted > 1 {
			msg = fmt.Sprintf("Drift: %d instances were changed outside berth; the plan puts them back as the file says.", drifted)
		}
		fmt.Fprintf(w, "%s\n", c.paint(ansiYellow, msg))
	}
}

func renderNode(w *bufio.Writer, n *jsonNode, c painter) {
	sym, verb := "", n.Action
	switch n.Action {
	case "create":
		sym = "+"
	case "update":
		sym, verb = "~", "update in-place"
		if n.Restart {
			verb = "update in-place, then restart"
		}
	case "replace":
		sym, verb = "-/+", "replace (delete, then create)"
		if n.CreateBeforeDestroy {
			sym, verb = "+/-", "replace (create, then delete)"
		}
	case "delete":
		sym = "-"
	case "start":
		sym = ">"
	case "stop":
		sym = "■"
	default:
		sym, verb = " ", "keep"
	}
	target := n.Backend
	if n.Provider != "" {
		target += "@" + n.Provider
	}
	if n.Object != "" {
		target += " " + n.Object
	}
	after := ""
	if len(n.DependsOn) > 0 {
		after = " after [" + strings.Join(n.DependsOn, ", ") + "]"
	}
	col := actionColor(n.Action)
	fmt.Fprintf(w, "\n  %s\n", c.paint(ansiDim, "# "+n.ID+": "+n.Reason))
	fmt.Fprintf(w, "%3s %s %s (%s)%s\n", c.paint(col, sym), c.paint(col, verb), c.paint(ansiBold, n.ID), target, after)
	for _, ch := range n.Changes {
		renderChange(w, n, &ch, c)
	}
}

func renderChange(w *bufio.Writer, n *jsonNode, ch *jsonChange, c painter) {
	var notes []string
	switch {
	case n.Action == "replace" && ch.Cost == "replace":
		notes = append(notes, c.paint(ansiRed, "forces replacement"))
	case ch.Cost == "restart" && n.Restart:
		notes = append(notes, "needs restart")
	}
	if ch.Drift {
		notes = append(notes, c.paint(ansiYellow, "drift: changed outside berth"))
	}
	note := ""
	if len(notes) > 0 {
		note = "  # " + strings.Join(notes, "; ")
	}
	const ind = "      "
	switch {
	case ch.Sensitive:
		fmt.Fprintf(w, "%s%s %s: (sensitive value)%s\n", ind, c.paint(ansiYellow, "~"), ch.Field, note)
	case ch.Old == nil:
		fmt.Fprintf(w, "%s%s %s: %s%s\n", ind, c.paint(ansiGreen, "+"), ch.Field, ch.New, note)
	case ch.New == nil:
		fmt.Fprintf(w, "%s%s %s: %s%s\n", ind, c.paint(ansiRed, "-"), ch.Field, ch.Old, note)
	default:
		oldObj, newObj := asObject(ch.Old), asObject(ch.New)
		if oldObj == nil || newObj == nil {
			fmt.Fprintf(w, "%s%s %s: %s -> %s%s\n", ind, c.paint(ansiYellow, "~"), ch.Field, ch.Old, ch.New, note)
			return
		}
		fmt.Fprintf(w, "%s%s %s:%s\n", ind, c.paint(ansiYellow, "~"), ch.Field, note)
		keys := map[string]bool{}
		for k := range oldObj {
			keys[k] = true
		}
		for k := range newObj {
			keys[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			o, nw := oldObj[k], newObj[k]
			switch {
			case o == nil:
				fmt.Fprintf(w, "%s    %s %s: %s\n", ind, c.paint(ansiGreen, "+"), k, nw)
			case nw == nil:
				fmt.Fprintf(w, "%s    %s %s: %s\n", ind, c.paint(ansiRed, "-"), k, o)
			case !bytes.Equal(o, nw):
				fmt.Fprintf(w, "%s    %s %s: %s -> %s\n", ind, c.paint(ansiYellow, "~"), k, o, nw)
			}
		}
	}
}

// asObject splits a JSON object into canonical member values; nil when v
// is not an object.
func asObject(v json.RawMessage) map[string]json.RawMessage {
	if len(v) == 0 || v[0] != '{' {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil {
		return nil
	}
	for k, x := range m {
		m[k] = canonicalValue(x)
	}
	return m
}

// WriteDOT writes the action graph in Graphviz DOT: one node per plan
// node labelled with its action and reason, an edge from each dependency
// to its dependent (the order actions run in).
func WriteDOT(w io.Writer, p *Plan) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "digraph %s {\n", dotQuote("berth "+p.Stack))
	bw.WriteString("  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"monospace\"];\n")
	colors := map[Action]string{NoOp: "gray", Create: "darkgreen", Update: "orange3", Replace: "red3",
		Start: "darkgreen", Stop: "orange3", Delete: "red3"}
	for _, n := range p.Nodes {
		label := n.Action.Symbol() + " " + n.Action.String() + " " + n.ID + "\n" + n.Backend
		if n.Object != "" {
			label += " " + n.Object
		}
		label += "\n" + n.Reason
		style := ""
		if n.Action == NoOp {
			style = ", style=\"rounded,dashed\""
		}
		fmt.Fprintf(bw, "  %s [label=%s, color=%s%s];\n", dotQuote(n.ID), dotQuote(label), colors[n.Action], style)
	}
	type edge struct{ from, to string }
	var edges []edge
	for _, n := range p.Nodes {
		for _, d := range n.DependsOn {
			edges = append(edges, edge{d, n.ID})
		}
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].from != edges[j].from {
			return edges[i].from < edges[j].from
		}
		return edges[i].to < edges[j].to
	})
	for _, e := range edges {
		fmt.Fprintf(bw, "  %s -> %s;\n", dotQuote(e.from), dotQuote(e.to))
	}
	bw.WriteString("}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write graph: %w", err)
	}
	return nil
}

// dotQuote quotes a DOT ID: backslash and double quote escaped, newlines
// as \n line breaks.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
