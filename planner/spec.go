package planner

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/manifest"
)

// ObjectName is the backend object name of an instance: its
// container_name when the file sets one, else "<stack>-<instance>"
// (valid as a hostname when both parts are).
func ObjectName(stack string, inst *manifest.Instance) string {
	if inst.ContainerName != "" {
		return inst.ContainerName
	}
	return stack + "-" + inst.Name
}

// neverApplied lists the instance fields that never reach a backend object
// on any backend: they steer berth (ordering, health gating), not the
// object, so they are left out of the canonical spec and its hash and a
// change to them changes nothing live.
var neverApplied = map[string]bool{"depends_on": true, "healthcheck": true}

// CanonicalSpec renders an instance as canonical JSON: keys sorted at every
// level, no insignificant space, defaults as manifest.Load applied them,
// secrets masked (manifest.Secret marshals as a mask) and the fields in
// neverApplied dropped. The hash is the hex sha256 of the spec. Drivers
// store both on the object (drivers.Ownership) so the next plan can diff
// field by field against the last-applied spec.
func CanonicalSpec(inst *manifest.Instance) (spec json.RawMessage, hash string) {
	_, spec, hash = canonicalSpec(inst)
	return spec, hash
}

// canonicalSpec is CanonicalSpec plus the spec's top-level members
// (sorted by key, values canonical), from which the diff builds its field
// map when it needs one.
func canonicalSpec(inst *manifest.Instance) (members []member, spec json.RawMessage, hash string) {
	raw, err := json.Marshal(inst)
	if err != nil {
		// Instance holds only JSON-safe types: this is a programming
		// error in the manifest types, not an input error.
		panic("planner: canonical spec of " + inst.Name + ": " + err.Error())
	}
	ms, _ := objectMembers(raw)
	members = ms[:0]
	size := 2
	for _, m := range ms {
		if neverApplied[m.key] {
			continue
		}
		m.val = canonicalCompact(m.val)
		size += len(m.raw) + len(m.val) + 2
		members = append(members, m)
	}
	sortMembers(members)
	spec = appendObject(make([]byte, 0, size), members)
	sum := sha256.Sum256(spec)
	return members, spec, hex.EncodeToString(sum[:])
}

// memberMap indexes members by key.
func memberMap(ms []member) map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(ms))
	for _, x := range ms {
		m[x.key] = x.val
	}
	return m
}

// splitFields splits a compact JSON object into top-level fields with
// canonical values; nil when it is not an object.
func splitFields(compact []byte) map[string]json.RawMessage {
	ms, ok := objectMembers(compact)
	if !ok {
		return nil
	}
	fields := make(map[string]json.RawMessage, len(ms))
	for _, m := range ms {
		fields[m.key] = canonicalCompact(m.val)
	}
	return fields
}

// canonicalValue canonicalises a JSON value that may hold insignificant
// space (a value read back by a driver).
func canonicalValue(v json.RawMessage) json.RawMessage {
	c := compactJSON(v)
	if c == nil {
		return bytes.TrimSpace(v)
	}
	return canonicalCompact(c)
}

// parseSpec splits a stored spec (drivers.Ownership.Spec) into top-level
// fields, each value canonicalised so it compares byte for byte with the
// desired fields. A spec that does not parse yields nil: every field then
// shows as changed, which is what a person would want to see.
func parseSpec(spec json.RawMessage) map[string]json.RawMessage {
	c := compactJSON(spec)
	if c == nil {
		return nil
	}
	return splitFields(c)
}

// forcedReplace lists fields whose change always recreates the object,
// whatever the driver says: they decide which object it is.
var forcedReplace = map[string]bool{"container_name": true}

// maskJSON is how a masked manifest.Secret appears inside a spec.
var maskJSON = []byte(strconv.Quote(manifest.Mask))

// isNull reports whether a field value is absent.
func isNull(v json.RawMessage) bool { return len(v) == 0 || string(v) == "null" }

// diffFields compares the desired spec with the last-applied one and the
// live values a driver read back. For each top-level field the current
// value is the live one when the driver reports it and berth applied the
// field before, else the last-applied one; a field whose current value
// differs from the desired one is a change, marked Drift when the live
// value differs from the last-applied one (changed outside berth). Fields
// whose cost is Ignore are dropped. Changes are sorted by field name.
func diffFields(desired, applied map[string]json.RawMessage, live map[string]json.RawMessage, caps drivers.Capabilities) []FieldChange {
	seen := make(map[string]bool, len(desired)+len(applied))
	var names []string
	for k := range desired {
		seen[k] = true
		names = append(names, k)
	}
	for k := range applied {
		if !seen[k] {
			seen[k] = true
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var changes []FieldChange
	for _, f := range names {
		d, a := desired[f], applied[f]
		cur, drift := a, false
		if lv, ok := live[f]; ok && !isNull(a) {
			lv = canonicalValue(lv)
			if !bytes.Equal(lv, a) {
				cur, drift = lv, true
			}
		}
		if bytes.Equal(cur, d) || (isNull(cur) && isNull(d)) {
			continue
		}
		cost := caps.Cost(f)
		if forcedReplace[f] {
			cost = drivers.Replace
		}
		if cost == drivers.Ignore {
			continue
		}
		fc := FieldChange{Field: f, Cost: cost, Drift: drift}
		if bytes.Contains(cur, maskJSON) || bytes.Contains(d, maskJSON) {
			fc.Sensitive = true
			changes = append(changes, fc)
			continue
		}
		if !isNull(cur) {
			fc.Old = cur
		}
		if !isNull(d) {
			fc.New = d
		}
		changes = append(changes, fc)
	}
	return changes
}
