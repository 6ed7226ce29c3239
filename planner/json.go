package planner

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/berth-dev/berth/drivers"
)

// The JSON plan (`berth plan --json`, `berth plan --out FILE`) is the
// source of truth of every plan view: RenderText and WriteDOT render this
// form, so a saved plan reads back and renders exactly as it was shown.
// It never holds a secret: specs are not written (only their hashes), and
// a change to a field holding a manifest.Secret is written without values.
// The format is versioned by FormatVersion (major.minor): readers accept
// any minor version of the major they know.

type jsonPlan struct {
	FormatVersion string         `json:"format_version"`
	Stack         string         `json:"stack"`
	File          string         `json:"file,omitempty"`
	Mode          string         `json:"mode"`
	Fingerprint   string         `json:"fingerprint"`
	Summary       map[string]int `json:"summary"`
	Nodes         []jsonNode     `json:"nodes"`
}

type jsonNode struct {
	ID                  string        `json:"id"`
	Instance            string        `json:"instance"`
	Backend             string        `json:"backend"`
	Provider            string        `json:"provider,omitempty"`
	Object              string        `json:"object,omitempty"`
	Action              string        `json:"action"`
	Actions             []string      `json:"actions"`
	Reason              string        `json:"reason"`
	DependsOn           []string      `json:"depends_on,omitempty"`
	Restart             bool          `json:"restart,omitempty"`
	CreateBeforeDestroy bool          `json:"create_before_destroy,omitempty"`
	Orphan              bool          `json:"orphan,omitempty"`
	Drift               bool          `json:"drift,omitempty"`
	SpecHash            string        `json:"spec_hash,omitempty"` // of the spec to apply
	Existing            *jsonExisting `json:"existing,omitempty"`
	Changes             []jsonChange  `json:"changes,omitempty"`
}

type jsonExisting struct {
	Ref      drivers.ObjectRef `json:"ref"`
	State    drivers.State     `json:"state"`
	ExitCode *int              `json:"exit_code,omitempty"`
	SpecHash string            `json:"spec_hash,omitempty"` // last applied
}

type jsonChange struct {
	Field     string          `json:"field"`
	Old       json.RawMessage `json:"old,omitempty"`
	New       json.RawMessage `json:"new,omitempty"`
	Cost      string          `json:"cost"`
	Drift     bool            `json:"drift,omitempty"`
	Sensitive bool            `json:"sensitive,omitempty"`
}

// jsonActions is the Terraform-style action list of a node: a replace is
// ["delete","create"], or ["create","delete"] when create-before-destroy.
func jsonActions(n *Node) []string {
	if n.Action == Replace {
		if n.CreateBeforeDestroy {
			return []string{"create", "delete"}
		}
		return []string{"delete", "create"}
	}
	return []string{n.Action.String()}
}

func toJSON(p *Plan) *jsonPlan {
	jp := &jsonPlan{
		FormatVersion: FormatVersion, Stack: p.Stack, File: p.File, Mode: p.Mode.String(),
		Fingerprint: p.fingerprint, Summary: map[string]int{}, Nodes: make([]jsonNode, 0, len(p.Nodes)),
	}
	for _, a := range []Action{Create, Update, Replace, Delete, Start, Stop, NoOp} {
		jp.Summary[a.String()] = 0
	}
	for _, n := range p.Nodes {
		jp.Summary[n.Action.String()]++
		jn := jsonNode{
			ID: n.ID, Instance: n.Instance, Backend: n.Backend, Provider: n.Provider, Object: n.Object,
			Action: n.Action.String(), Actions: jsonActions(n), Reason: n.Reason, DependsOn: n.DependsOn,
			Restart: n.Restart, CreateBeforeDestroy: n.CreateBeforeDestroy, Orphan: n.Orphan,
		}
		if n.Owner != nil {
			jn.SpecHash = n.Owner.SpecHash
		}
		if e := n.Existing; e != nil {
			je := &jsonExisting{Ref: e.Ref, State: e.State, ExitCode: e.ExitCode}
			if e.Owner != nil {
				je.SpecHash = e.Owner.SpecHash
			}
			jn.Existing = je
		}
		for _, c := range n.Changes {
			jc := jsonChange{Field: c.Field, Old: c.Old, New: c.New, Cost: c.Cost.String(), Drift: c.Drift, Sensitive: c.Sensitive}
			if c.Sensitive {
				jc.Old, jc.New = nil, nil
			}
			jn.Drift = jn.Drift || c.Drift
			jn.Changes = append(jn.Changes, jc)
		}
		jp.Nodes = append(jp.Nodes, jn)
	}
	return jp
}

// WriteJSON writes the versioned JSON form of the plan, indented.
func WriteJSON(w io.Writer, p *Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(toJSON(p)); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}

// ReadJSON reads a plan written by WriteJSON. The plan it returns is for
// showing and for its Fingerprint: nodes carry no Desired instance and
// no full Owner spec (a saved plan holds no specs), so to apply it, load
// the stack file again, re-plan, and apply the fresh plan when the
// fingerprints match.
func ReadJSON(r io.Reader) (*Plan, error) {
	var jp jsonPlan
	dec := json.NewDecoder(r)
	if err := dec.Decode(&jp); err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	return fromJSON(&jp)
}

func fromJSON(jp *jsonPlan) (*Plan, error) {
	major, _, _ := strings.Cut(jp.FormatVersion, ".")
	want, _, _ := strings.Cut(FormatVersion, ".")
	if major != want {
		return nil, fmt.Errorf("read plan: format_version %q is not supported (this berth reads %s.x)", jp.FormatVersion, want)
	}
	mode, err := parseMode(jp.Mode)
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	p := &Plan{Stack: jp.Stack, File: jp.File, Mode: mode, fingerprint: jp.Fingerprint}
	for _, jn := range jp.Nodes {
		a, err := parseAction(jn.Action)
		if err != nil {
			return nil, fmt.Errorf("read plan: node %s: %w", jn.ID, err)
		}
		n := &Node{
			ID: jn.ID, Instance: jn.Instance, Backend: jn.Backend, Provider: jn.Provider, Object: jn.Object,
			Action: a, Reason: jn.Reason, DependsOn: jn.DependsOn, Restart: jn.Restart,
			CreateBeforeDestroy: jn.CreateBeforeDestroy, Orphan: jn.Orphan,
		}
		if jn.SpecHash != "" {
			n.Owner = &drivers.Ownership{Stack: jp.Stack, Instance: jn.Instance, SpecHash: jn.SpecHash}
		}
		if je := jn.Existing; je != nil {
			n.Existing = &drivers.ObservedInstance{Ref: je.Ref, State: je.State, ExitCode: je.ExitCode}
			if je.SpecHash != "" {
				n.Existing.Owner = &drivers.Ownership{Stack: jp.Stack, Instance: jn.Instance, SpecHash: je.SpecHash}
			}
		}
		for _, jc := range jn.Changes {
			cost, err := parseCost(jc.Cost)
			if err != nil {
				return nil, fmt.Errorf("read plan: node %s: field %s: %w", jn.ID, jc.Field, err)
			}
			fc := FieldChange{Field: jc.Field, Cost: cost, Drift: jc.Drift, Sensitive: jc.Sensitive}
			// WriteJSON indents values; keep them canonical in memory.
			if !isNull(jc.Old) {
				fc.Old = canonicalValue(jc.Old)
			}
			if !isNull(jc.New) {
				fc.New = canonicalValue(jc.New)
			}
			n.Changes = append(n.Changes, fc)
		}
		p.Nodes = append(p.Nodes, n)
	}
	return p, nil
}

// ParseAction is the inverse of Action.String.
func parseAction(s string) (Action, error) {
	for i, name := range actionNames {
		if name == s {
			return Action(i), nil
		}
	}
	return 0, fmt.Errorf("unknown action %q", s)
}

func parseMode(s string) (Mode, error) {
	for i, name := range modeNames {
		if name == s {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown mode %q", s)
}

func parseCost(s string) (drivers.ChangeKind, error) {
	for _, k := range []drivers.ChangeKind{drivers.Ignore, drivers.InPlace, drivers.Restart, drivers.Replace} {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown cost %q", s)
}
