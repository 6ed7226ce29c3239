// Package planner turns a desired stack and an observed snapshot of live
// state into an action graph. It is pure: no I/O, no clocks, no drivers
// called, so every case is tested in memory and golden files.
package planner

import (
	"encoding/json"
	"strings"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/manifest"
)

// FormatVersion is the version of the JSON plan format.
const FormatVersion = "1.0"

// Action is what a plan node does to one backend object. The values are
// fixed: they appear in saved plans.
type Action int

const (
	NoOp Action = iota
	Create
	Update
	Replace
	Start
	Stop
	Delete
)

var actionNames = [...]string{"no-op", "create", "update", "replace", "start", "stop", "delete"}
var actionSymbols = [...]string{" ", "+", "~", "-/+", ">", "■", "-"}

func (a Action) String() string { return actionNames[a] }

// Symbol is the one-glyph marker of the human plan view.
func (a Action) Symbol() string { return actionSymbols[a] }

// FieldChange is one field that differs between the last-applied (or live)
// spec and the desired one.
type FieldChange struct {
	Field string             `json:"field"`
	Old   json.RawMessage    `json:"old,omitempty"`
	New   json.RawMessage    `json:"new,omitempty"`
	Cost  drivers.ChangeKind `json:"-"`
	// Drift is true when the live value differs from the last-applied
	// one: someone changed it outside berth.
	Drift bool `json:"drift,omitempty"`
	// Sensitive is set when the value holds a secret (a masked
	// manifest.Secret): Old and New are then left out of every output.
	Sensitive bool `json:"sensitive,omitempty"`
}

// Node is one action on one backend object.
type Node struct {
	ID       string `json:"id"` // unique in the plan, e.g. "web" or "web/old"
	Instance string `json:"instance"`
	Backend  string `json:"backend"`
	Provider string `json:"provider,omitempty"`
	Action   Action `json:"-"`
	// Reason is for people only ("memory 256M -> 512M").
	Reason    string        `json:"reason"`
	DependsOn []string      `json:"depends_on,omitempty"` // node IDs that must finish first
	Changes   []FieldChange `json:"changes,omitempty"`
	// Restart is set on an Update whose fields only take effect after a
	// stop/start.
	Restart bool `json:"restart,omitempty"`
	// Existing is the live object acted on (nil for Create).
	Existing *drivers.ObservedInstance `json:"existing,omitempty"`
	// Desired and Owner describe the object to create or update (nil for
	// Delete/Stop of an orphan).
	Desired *manifest.Instance `json:"-"`
	Owner   *drivers.Ownership `json:"owner,omitempty"`

	// Object is the backend object name the node acts on (the existing
	// object for Delete/Stop/Start, the one to create otherwise).
	Object string `json:"object,omitempty"`
	// CreateBeforeDestroy is set on a Replace whose backend lets the
	// successor exist beside the old object (Capabilities), so the
	// executor creates first and deletes the old object once the new one
	// is up. Informative: the executor reads the driver's Capabilities.
	CreateBeforeDestroy bool `json:"create_before_destroy,omitempty"`
	// Orphan is set on nodes of objects the stack owns but the file no
	// longer lists (deleted, or a NoOp kept by --keep-orphans).
	Orphan bool `json:"orphan,omitempty"`
}

// Plan is the action graph for one stack.
type Plan struct {
	Stack string  `json:"stack"`
	Nodes []*Node `json:"nodes"`

	// File is the stack file the plan was made from (for saved plans).
	File string `json:"file,omitempty"`
	Mode Mode   `json:"-"`

	// fingerprint summarises the inputs (desired hashes and dependencies,
	// the observed state the stack owns, mode); see Fingerprint.
	fingerprint string
}

// String is one stable line per node, the form planner tests compare:
// "create web (lxc) after [db]: new instance". Flags follow the backend:
// "update web (lxc, restart) ...", "replace db (crun, create-before-destroy) ...".
func (n *Node) String() string {
	var b strings.Builder
	b.WriteString(n.Action.String())
	b.WriteByte(' ')
	b.WriteString(n.ID)
	b.WriteString(" (")
	b.WriteString(n.Backend)
	if n.Provider != "" {
		b.WriteString("@" + n.Provider)
	}
	if n.Restart {
		b.WriteString(", restart")
	}
	if n.CreateBeforeDestroy {
		b.WriteString(", create-before-destroy")
	}
	b.WriteByte(')')
	if len(n.DependsOn) > 0 {
		b.WriteString(" after [")
		b.WriteString(strings.Join(n.DependsOn, ", "))
		b.WriteByte(']')
	}
	b.WriteString(": ")
	b.WriteString(n.Reason)
	return b.String()
}

// HasChanges reports whether applying the plan would change anything.
func (p *Plan) HasChanges() bool {
	for _, n := range p.Nodes {
		if n.Action != NoOp {
			return true
		}
	}
	return false
}

// Fingerprint summarises what the plan was computed from: the stack name,
// mode, every desired instance's spec hash and dependencies, and the
// observed state of every object the stack owns. A saved plan (ReadJSON)
// carries the fingerprint it was made with; re-plan and compare to refuse
// a stale plan.
func (p *Plan) Fingerprint() string { return p.fingerprint }

// Node returns the node with the given ID, or nil.
func (p *Plan) Node(id string) *Node {
	for _, n := range p.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Counts returns how many nodes the plan has of each action.
func (p *Plan) Counts() map[Action]int {
	c := map[Action]int{}
	for _, n := range p.Nodes {
		c[n.Action]++
	}
	return c
}
