// Package planner turns a desired stack and an observed snapshot of live
// state into an action graph. It is pure: no I/O, no clocks, no drivers
// called, so every case is tested in memory and golden files.
package planner

import (
	"encoding/json"

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
}

// Plan is the action graph for one stack.
type Plan struct {
	Stack string  `json:"stack"`
	Nodes []*Node `json:"nodes"`
}
