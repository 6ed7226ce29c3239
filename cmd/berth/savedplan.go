package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/planner"
)

// savedPlanFormat is the version of the file `berth plan --out` writes.
const savedPlanFormat = 1

// savedPlan is the file `berth plan --out FILE` writes and `berth up FILE`
// applies: the versioned JSON plan plus what it was made from, so a plan
// whose stack file or live state changed since is refused instead of
// applied blind (Terraform's "saved plan is stale").
type savedPlan struct {
	Format      int       `json:"berth_saved_plan"`
	Stack       string    `json:"stack"`
	StackFile   string    `json:"stack_file"`
	Created     time.Time `json:"created"`
	KeepOrphans bool      `json:"keep_orphans,omitempty"`
	// StackSHA256 is the hash of the stack file's bytes.
	StackSHA256 string `json:"stack_sha256"`
	// LiveFingerprint hashes the observed objects the stack owns (name,
	// state, spec hash, live fields; not IPs or timestamps).
	LiveFingerprint string `json:"live_fingerprint"`
	// PlanFingerprint hashes the plan's nodes (actions, reasons, field
	// changes, ordering): it catches changes of interpolated variables
	// and of foreign objects that affect the plan.
	PlanFingerprint string `json:"plan_fingerprint"`
	// Plan is the plan as `berth plan --json` prints it.
	Plan json.RawMessage `json:"plan"`
}

// newSavedPlan records p with the fingerprints of the session it came from.
func newSavedPlan(s *session, p *planner.Plan, keepOrphans bool, now time.Time) (*savedPlan, error) {
	var buf bytes.Buffer
	if err := planner.WriteJSON(&buf, p); err != nil {
		return nil, err
	}
	sum, err := fileSHA256(s.stack.File)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(s.stack.File)
	if err != nil {
		abs = s.stack.File
	}
	return &savedPlan{
		Format: savedPlanFormat, Stack: s.stack.Name, StackFile: abs, Created: now.UTC(),
		KeepOrphans: keepOrphans, StackSHA256: sum,
		LiveFingerprint: liveFingerprint(s.stack.Name, s.observed),
		PlanFingerprint: planFingerprint(p),
		Plan:            json.RawMessage(bytes.TrimSpace(buf.Bytes())),
	}, nil
}

func writeSavedPlan(path string, sp *savedPlan) error {
	data, err := json.MarshalIndent(sp, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	return nil
}

func readSavedPlan(path string) (*savedPlan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	var sp savedPlan
	if err := json.Unmarshal(data, &sp); err != nil {
		return nil, fmt.Errorf("read plan %s: not a saved berth plan: %w", path, err)
	}
	if sp.Format != savedPlanFormat {
		return nil, fmt.Errorf("read plan %s: not a saved berth plan (made by `berth plan --out`) of format %d", path, savedPlanFormat)
	}
	if _, err := planner.ReadJSON(bytes.NewReader(sp.Plan)); err != nil {
		return nil, fmt.Errorf("read plan %s: %w", path, err)
	}
	return &sp, nil
}

// staleness compares a saved plan with a fresh one made now; it returns ""
// when the saved plan still holds, else why it does not.
func (sp *savedPlan) staleness(s *session, fresh *planner.Plan) string {
	if sp.Stack != s.stack.Name {
		return fmt.Sprintf("it is for stack %q, not %q", sp.Stack, s.stack.Name)
	}
	if sum, err := fileSHA256(s.stack.File); err != nil || sum != sp.StackSHA256 {
		return fmt.Sprintf("the stack file %s changed since it was made", s.stack.File)
	}
	if liveFingerprint(s.stack.Name, s.observed) != sp.LiveFingerprint {
		return "the live state changed since it was made"
	}
	if planFingerprint(fresh) != sp.PlanFingerprint {
		return "planning again now gives a different plan"
	}
	return ""
}

func fileSHA256(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

func hashJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are hashed
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// liveFingerprint hashes what matters of the objects the stack owns.
// Addresses and timestamps are left out: a DHCP lease renewal does not make
// a plan stale.
func liveFingerprint(stack string, observed []drivers.ObservedInstance) string {
	type obj struct {
		Ref      drivers.ObjectRef          `json:"ref"`
		State    drivers.State              `json:"state"`
		ExitCode *int                       `json:"exit_code"`
		Instance string                     `json:"instance"`
		SpecHash string                     `json:"spec_hash"`
		Live     map[string]json.RawMessage `json:"live"`
	}
	var objs []obj
	for _, o := range ownedBy(stack, observed) {
		objs = append(objs, obj{o.Ref, o.State, o.ExitCode, o.Owner.Instance, o.Owner.SpecHash, o.Live})
	}
	return hashJSON(objs)
}

// planFingerprint hashes the plan's nodes without the observed details
// (IPs, timestamps) the live fingerprint deliberately ignores.
func planFingerprint(p *planner.Plan) string {
	type node struct {
		ID, Instance, Backend, Provider string
		Action                          int
		Reason                          string
		DependsOn                       []string
		Changes                         []planner.FieldChange
		Restart                         bool
		Existing                        string
		SpecHash                        string
	}
	nodes := make([]node, 0, len(p.Nodes))
	for _, n := range p.Nodes {
		x := node{ID: n.ID, Instance: n.Instance, Backend: n.Backend, Provider: n.Provider, Action: int(n.Action),
			Reason: n.Reason, DependsOn: n.DependsOn, Changes: n.Changes, Restart: n.Restart}
		if n.Existing != nil {
			x.Existing = n.Existing.Ref.Backend + "/" + n.Existing.Ref.Provider + "/" + n.Existing.Ref.Name + "/" + n.Existing.Ref.ID
		}
		if n.Owner != nil {
			x.SpecHash = n.Owner.SpecHash
		}
		nodes = append(nodes, x)
	}
	return hashJSON(struct {
		Stack string
		Nodes []node
	}{p.Stack, nodes})
}
