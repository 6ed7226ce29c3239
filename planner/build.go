package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/manifest"
)

// Mode says what the plan is for.
type Mode int

const (
	// ModeUp converges the live state onto the stack file: create,
	// update, replace, start, and delete orphans unless KeepOrphans.
	ModeUp Mode = iota
	// ModeDown deletes everything the stack owns, in reverse dependency
	// order.
	ModeDown
	// ModeStop stops every running object the stack owns, in reverse
	// dependency order, and deletes nothing.
	ModeStop
)

var modeNames = [...]string{"up", "down", "stop"}

func (m Mode) String() string {
	if m < 0 || int(m) >= len(modeNames) {
		return "mode(" + strconv.Itoa(int(m)) + ")"
	}
	return modeNames[m]
}

// Input is everything the planner needs. It is read only.
type Input struct {
	Stack    *manifest.Stack
	Observed []drivers.ObservedInstance
	// Capabilities of each backend in use, by backend name.
	Capabilities map[string]drivers.Capabilities
	Mode         Mode
	// KeepOrphans leaves objects the stack owns but the file no longer
	// lists alone (berth up --keep-orphans).
	KeepOrphans bool
}

// Compute computes the action graph that takes the observed state to the
// stack file (ModeUp) or removes/stops what the stack owns (ModeDown,
// ModeStop). It is pure and deterministic: the same input gives the same
// plan, nodes in topological order with ties broken by ID. The error lists
// every plan-time problem at once (errors.Join): a name clash with an
// object berth does not own (naming the object), a dependency cycle, a
// backend without capabilities.
//
// (The brief called this function Plan; Go cannot have a function and the
// Plan type under one name, so it is Compute.)
func Compute(in Input) (*Plan, error) {
	if in.Stack == nil {
		return nil, errors.New("planner: no stack")
	}
	b := newBuilder(in)
	switch in.Mode {
	case ModeUp:
		b.planUp()
	case ModeDown:
		b.planTeardown(Delete)
	case ModeStop:
		b.planTeardown(Stop)
	default:
		return nil, fmt.Errorf("planner: unknown mode %d", in.Mode)
	}
	if err := errors.Join(b.errs...); err != nil {
		return nil, err
	}
	nodes, err := topoSort(b.nodes)
	if err != nil {
		if b.nameMoves {
			err = fmt.Errorf("%w (backend object names move between instances in one change: rename in two steps, through names no object uses)", err)
		}
		return nil, err
	}
	return &Plan{
		Stack:       in.Stack.Name,
		File:        in.Stack.File,
		Mode:        in.Mode,
		Nodes:       nodes,
		fingerprint: b.fingerprint(),
	}, nil
}

// builder holds the state of one Plan call.
type builder struct {
	in    Input
	stack string
	names []string // desired instance names, sorted
	// owned groups the objects this stack owns by Owner.Instance;
	// foreign holds every other object. Both are sorted by backend,
	// provider, name.
	owned   map[string][]*drivers.ObservedInstance
	foreign []*drivers.ObservedInstance
	hashes  map[string]string // desired instance -> spec hash (ModeUp)

	nodes []*Node
	byID  map[string]*Node
	// head and tail are the first and last node of each instance name
	// (they differ when an update is followed by a start): dependents
	// wait for the tail, the head waits for dependencies.
	head, tail map[string]*Node
	errs       []error
	// nameMoves is set when a create waits for another instance's object
	// to release its name: the one way the planner itself adds edges.
	nameMoves bool
}

func newBuilder(in Input) *builder {
	b := &builder{
		in:     in,
		stack:  in.Stack.Name,
		names:  slices.Sorted(maps.Keys(in.Stack.Instances)),
		owned:  map[string][]*drivers.ObservedInstance{},
		hashes: map[string]string{},
		byID:   map[string]*Node{},
		head:   map[string]*Node{},
		tail:   map[string]*Node{},
	}
	obs := make([]*drivers.ObservedInstance, len(in.Observed))
	for i := range in.Observed {
		obs[i] = &in.Observed[i]
	}
	sort.SliceStable(obs, func(i, j int) bool { return refLess(obs[i].Ref, obs[j].Ref) })
	for _, o := range obs {
		if o.Owner != nil && o.Owner.Stack == b.stack {
			b.owned[o.Owner.Instance] = append(b.owned[o.Owner.Instance], o)
		} else {
			b.foreign = append(b.foreign, o)
		}
	}
	return b
}

func refLess(a, b drivers.ObjectRef) bool {
	if a.Backend != b.Backend {
		return a.Backend < b.Backend
	}
	if a.Provider != b.Provider {
		return a.Provider < b.Provider
	}
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	return a.ID < b.ID
}

// sameTarget reports whether an observed object lives where an instance
// wants its object: same backend and, when both name one, same provider.
func sameTarget(ref drivers.ObjectRef, inst *manifest.Instance) bool {
	if ref.Backend != inst.Backend {
		return false
	}
	return ref.Provider == "" || inst.Provider == "" || ref.Provider == inst.Provider
}

// add registers a node under a unique ID derived from id.
func (b *builder) add(n *Node) *Node {
	id := n.ID
	for i := 2; b.byID[id] != nil; i++ {
		id = n.ID + "-" + strconv.Itoa(i)
	}
	n.ID = id
	b.byID[id] = n
	b.nodes = append(b.nodes, n)
	return n
}

// objectKind names a backend object for people: "lxc container demo-web".
func objectKind(backend string) string {
	if backend == manifest.BackendProxmoxVM {
		return backend + " VM"
	}
	return backend + " container"
}

// splitPrimary picks, among the objects an instance owns, the one the plan
// acts on (on the instance's backend, preferring the expected object
// name); the rest are left over from a backend change or an interrupted
// replace and are deleted.
func splitPrimary(objs []*drivers.ObservedInstance, inst *manifest.Instance, objName string) (primary *drivers.ObservedInstance, extra []*drivers.ObservedInstance) {
	for _, o := range objs {
		if sameTarget(o.Ref, inst) && o.Ref.Name == objName {
			primary = o
			break
		}
	}
	if primary == nil {
		for _, o := range objs {
			if sameTarget(o.Ref, inst) {
				primary = o
				break
			}
		}
	}
	for _, o := range objs {
		if o != primary {
			extra = append(extra, o)
		}
	}
	return primary, extra
}

func (b *builder) planUp() {
	st := b.in.Stack
	// claims maps "backend\x00name" of every object name the file wants
	// to the instance that wants it, to spot clashes.
	claims := map[string]string{}
	for _, name := range b.names {
		inst := st.Instances[name]
		objName := ObjectName(b.stack, inst)
		claims[inst.Backend+"\x00"+objName] = name
		for _, o := range b.foreign {
			if sameTarget(o.Ref, inst) && o.Ref.Name == objName {
				owner := "is not owned by stack " + b.stack
				if o.Owner != nil {
					owner = fmt.Sprintf("is owned by stack %s, not %s", o.Owner.Stack, b.stack)
				}
				b.errs = append(b.errs, fmt.Errorf("instance %s: %s %s exists and %s; berth will not adopt or delete it (rename the instance or set container_name)",
					name, objectKind(o.Ref.Backend), o.Ref.Name, owner))
			}
		}
	}
	for _, name := range b.names {
		b.planInstance(st.Instances[name])
	}
	// Orphans: owned objects of instances the file no longer lists.
	for _, iname := range slices.Sorted(maps.Keys(b.owned)) {
		if _, ok := st.Instances[iname]; ok {
			continue
		}
		for _, o := range b.owned[iname] {
			n := &Node{ID: nodeID(iname, o), Instance: iname, Backend: o.Ref.Backend, Provider: o.Ref.Provider,
				Object: o.Ref.Name, Existing: o, Action: Delete, Reason: "orphan: no longer in the stack file", Orphan: true}
			if b.in.KeepOrphans {
				n.Action = NoOp
				n.Reason = "orphan: no longer in the stack file; kept (--keep-orphans)"
			}
			b.add(n)
		}
	}
	b.linkDependencies(false)
	b.resolveNameClaims(claims)
}

// resolveNameClaims orders a create after the delete of another owned
// object that holds the name it needs (an orphan, or an instance whose
// container_name moved), and reports the clash when that object stays.
func (b *builder) resolveNameClaims(claims map[string]string) {
	for _, n := range b.nodes {
		if n.Existing == nil {
			continue
		}
		want, ok := claims[n.Existing.Ref.Backend+"\x00"+n.Existing.Ref.Name]
		if !ok || want == n.Instance {
			continue
		}
		creator := b.head[want]
		if creator == nil || (creator.Action != Create && creator.Action != Replace) {
			continue
		}
		if n.Action == Delete || n.Action == Replace {
			creator.DependsOn = appendUnique(creator.DependsOn, n.ID)
			b.nameMoves = true
			continue
		}
		b.errs = append(b.errs, fmt.Errorf("instance %s: %s %s is owned by instance %s of stack %s, which keeps it (%s)",
			want, objectKind(n.Backend), n.Existing.Ref.Name, n.Instance, b.stack, n.Reason))
	}
}

// nodeID is the ID of an owned object's node: its instance name, or its
// object name when the ownership record names no instance.
func nodeID(instance string, o *drivers.ObservedInstance) string {
	if instance == "" {
		return o.Ref.Name
	}
	return instance
}

func appendUnique(list []string, id string) []string {
	for _, x := range list {
		if x == id {
			return list
		}
	}
	return append(list, id)
}

// planInstance adds the nodes of one desired instance.
func (b *builder) planInstance(inst *manifest.Instance) {
	objName := ObjectName(b.stack, inst)
	members, spec, hash := canonicalSpec(inst)
	b.hashes[inst.Name] = hash
	owner := &drivers.Ownership{Stack: b.stack, Instance: inst.Name, SpecHash: hash, Spec: spec}
	primary, extra := splitPrimary(b.owned[inst.Name], inst, objName)

	var olds []string
	for _, o := range extra {
		reason := "duplicate object of instance " + inst.Name
		if !sameTarget(o.Ref, inst) {
			reason = fmt.Sprintf("backend changed %s -> %s: the old object is deleted", refTarget(o.Ref), instTarget(inst))
		}
		n := b.add(&Node{ID: inst.Name + "/old", Instance: inst.Name, Backend: o.Ref.Backend, Provider: o.Ref.Provider,
			Object: o.Ref.Name, Existing: o, Action: Delete, Reason: reason})
		olds = append(olds, n.ID)
	}

	n := &Node{ID: inst.Name, Instance: inst.Name, Backend: inst.Backend, Provider: inst.Provider,
		Object: objName, Desired: inst, DependsOn: olds}
	if primary == nil {
		n.Action, n.Owner, n.Reason = Create, owner, "new instance"
		if len(extra) > 0 && !sameTarget(extra[0].Ref, inst) {
			n.Reason = fmt.Sprintf("backend changed %s -> %s: new instance", refTarget(extra[0].Ref), instTarget(inst))
		}
		b.add(n)
		b.head[inst.Name], b.tail[inst.Name] = n, n
		return
	}
	n.Existing = primary
	var changes []FieldChange
	if primary.Owner.SpecHash != hash || len(primary.Live) > 0 {
		applied := parseSpec(primary.Owner.Spec)
		if applied == nil && primary.Owner.SpecHash != hash {
			// Nothing to diff against: the only change known to bring
			// the object to the file is to make it again.
			n.Action, n.Owner = Replace, owner
			n.CreateBeforeDestroy = b.in.Capabilities[primary.Ref.Backend].CreateBeforeDestroy
			n.Reason = "spec hash changed and the object records no last-applied spec: forces replace"
			b.add(n)
			b.head[inst.Name], b.tail[inst.Name] = n, n
			return
		}
		caps, ok := b.in.Capabilities[primary.Ref.Backend]
		if !ok {
			caps = drivers.Capabilities{Default: drivers.Replace}
		}
		changes = diffFields(memberMap(members), applied, primary.Live, caps)
		if !ok && len(changes) > 0 {
			b.errs = append(b.errs, fmt.Errorf("instance %s: no capabilities for backend %s", inst.Name, primary.Ref.Backend))
		}
	}
	cost := drivers.Ignore
	for _, c := range changes {
		cost = max(cost, c.Cost)
	}
	running := primary.State == drivers.StateRunning || primary.State == drivers.StatePaused
	switch cost {
	case drivers.Replace:
		caps := b.in.Capabilities[primary.Ref.Backend]
		n.Action, n.Owner, n.Changes = Replace, owner, changes
		n.CreateBeforeDestroy = caps.CreateBeforeDestroy
		n.Reason = replaceReason(changes)
		b.add(n)
		b.head[inst.Name], b.tail[inst.Name] = n, n
		return
	case drivers.InPlace, drivers.Restart:
		n.Action, n.Owner, n.Changes = Update, owner, changes
		n.Restart = cost == drivers.Restart && running
		n.Reason = updateReason(changes, n.Restart)
		b.add(n)
		b.head[inst.Name], b.tail[inst.Name] = n, n
		if start, why := shouldStart(inst, primary); start {
			s := b.add(&Node{ID: inst.Name + "/start", Instance: inst.Name, Backend: inst.Backend, Provider: inst.Provider,
				Object: primary.Ref.Name, Existing: primary, Desired: inst, Action: Start, Reason: why, DependsOn: []string{n.ID}})
			b.tail[inst.Name] = s
		}
		return
	}
	n.Object = primary.Ref.Name
	if start, why := shouldStart(inst, primary); start {
		n.Action, n.Reason = Start, why
	} else {
		n.Action, n.Reason = NoOp, why
	}
	b.add(n)
	b.head[inst.Name], b.tail[inst.Name] = n, n
}

func refTarget(r drivers.ObjectRef) string {
	if r.Provider != "" {
		return r.Backend + "@" + r.Provider
	}
	return r.Backend
}

func instTarget(i *manifest.Instance) string {
	if i.Provider != "" {
		return i.Backend + "@" + i.Provider
	}
	return i.Backend
}

// shouldStart decides whether an existing, unchanged object must be
// started, following the restart policy the way `docker compose up` treats
// a stopped container: a one-shot (`restart: no`) that exited 0 has done
// its job; `on-failure` reruns only after a failure; `always`,
// `unless-stopped` and no policy start whatever stopped it. An object that
// was never started is started whatever its policy.
func shouldStart(inst *manifest.Instance, o *drivers.ObservedInstance) (bool, string) {
	exit := "stopped"
	if o.ExitCode != nil {
		exit = "exited " + strconv.Itoa(*o.ExitCode)
	}
	switch o.State {
	case drivers.StateRunning:
		return false, "up to date, running"
	case drivers.StatePaused:
		return false, "up to date, paused (berth leaves paused instances alone)"
	case drivers.StateCreated:
		return true, "created but never started"
	case drivers.StateStopped, drivers.StateExited:
	default:
		return false, "up to date, state " + string(o.State)
	}
	switch inst.Restart {
	case "no":
		if o.ExitCode != nil && *o.ExitCode == 0 {
			return false, "up to date, one-shot exited 0 (restart: no)"
		}
		return true, exit + ", not completed (restart: no): run again"
	case "on-failure":
		if o.ExitCode != nil && *o.ExitCode == 0 {
			return false, "up to date, exited 0 (restart: on-failure)"
		}
		return true, exit + " (restart: on-failure)"
	case "":
		return true, exit + ", should run"
	default:
		return true, exit + " (restart: " + inst.Restart + ")"
	}
}

// describeChange is one change for people: "memory 256M -> 512M".
func describeChange(c FieldChange) string {
	if c.Sensitive {
		return c.Field + " changed (sensitive value)"
	}
	old, oldOK := scalarText(c.Old)
	nw, newOK := scalarText(c.New)
	if c.Drift {
		if oldOK && newOK {
			return fmt.Sprintf("drift: %s changed outside berth (%s live, %s applied)", c.Field, old, nw)
		}
		return fmt.Sprintf("drift: %s changed outside berth", c.Field)
	}
	switch {
	case oldOK && newOK && c.Old != nil && c.New != nil:
		return fmt.Sprintf("%s %s -> %s", c.Field, old, nw)
	case c.Old == nil && newOK:
		return fmt.Sprintf("%s set to %s", c.Field, nw)
	case c.New == nil && oldOK:
		return fmt.Sprintf("%s unset (was %s)", c.Field, old)
	}
	return c.Field + " changed"
}

// scalarText renders a JSON scalar without quotes; ok is false for
// objects and arrays. An absent value renders as "unset".
func scalarText(v json.RawMessage) (string, bool) {
	if isNull(v) {
		return "unset", true
	}
	switch v[0] {
	case '{', '[':
		return "", false
	case '"':
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s, true
		}
	}
	return string(v), true
}

func updateReason(changes []FieldChange, restart bool) string {
	parts := make([]string, len(changes))
	for i, c := range changes {
		parts[i] = describeChange(c)
	}
	r := strings.Join(parts, "; ")
	if restart {
		r += " (needs restart)"
	}
	return r
}

// replaceReason names the fields that force the replace; drift among them
// is described in full.
func replaceReason(changes []FieldChange) string {
	var fields, drift []string
	for _, c := range changes {
		if c.Cost != drivers.Replace {
			continue
		}
		if c.Drift {
			drift = append(drift, describeChange(c))
		} else {
			fields = append(fields, c.Field)
		}
	}
	var parts []string
	if len(fields) > 0 {
		parts = append(parts, strings.Join(fields, ", ")+" changed")
	}
	parts = append(parts, drift...)
	return strings.Join(parts, "; ") + ": forces replace"
}

// planTeardown deletes (ModeDown) or stops (ModeStop) every object the
// stack owns, dependents before their dependencies.
func (b *builder) planTeardown(action Action) {
	st := b.in.Stack
	for _, iname := range slices.Sorted(maps.Keys(b.owned)) {
		inst, inFile := st.Instances[iname]
		objs := b.owned[iname]
		if inFile {
			var primary *drivers.ObservedInstance
			primary, objs = splitPrimary(objs, inst, ObjectName(b.stack, inst))
			if primary != nil {
				objs = append([]*drivers.ObservedInstance{primary}, objs...)
			}
		}
		for i, o := range objs {
			n := &Node{ID: nodeID(iname, o), Instance: iname, Backend: o.Ref.Backend, Provider: o.Ref.Provider,
				Object: o.Ref.Name, Existing: o, Action: action, Orphan: !inFile}
			if i > 0 {
				n.ID = iname + "/old"
			}
			if inFile && i == 0 {
				n.Desired = inst
			}
			running := o.State == drivers.StateRunning || o.State == drivers.StatePaused
			switch {
			case action == Delete && !inFile:
				n.Reason = "orphan: no longer in the stack file"
			case action == Delete:
				n.Reason = "down: stack " + b.stack + " is removed"
			case running:
				n.Reason = "stop: " + string(o.State)
			default:
				n.Action, n.Reason = NoOp, "already "+string(o.State)
			}
			b.add(n)
			if i == 0 {
				b.head[iname], b.tail[iname] = n, n
			}
		}
	}
	b.linkDependencies(true)
}

// linkDependencies adds the depends_on edges of the file between the nodes
// of each instance. Forward (reverse=false): an instance's first node
// waits for the last node of each dependency. Reverse: a dependency's node
// waits for its dependents' nodes (teardown). Orphans have no recorded
// dependencies (depends_on is not part of the stored spec) and are not
// ordered.
func (b *builder) linkDependencies(reverse bool) {
	for _, name := range b.names {
		inst := b.in.Stack.Instances[name]
		for _, dep := range slices.Sorted(maps.Keys(inst.DependsOn)) {
			if reverse {
				from, to := b.head[dep], b.tail[name]
				if from != nil && to != nil {
					from.DependsOn = appendUnique(from.DependsOn, to.ID)
				}
				continue
			}
			from, to := b.head[name], b.tail[dep]
			if from != nil && to != nil {
				from.DependsOn = appendUnique(from.DependsOn, to.ID)
			}
		}
	}
}

// fingerprint hashes what the plan was computed from: mode, the desired
// spec hashes and dependencies, and the observed state of every object the
// stack owns. A saved plan whose fingerprint differs from a fresh plan's
// is stale.
func (b *builder) fingerprint() string {
	h := sha256.New()
	buf := make([]byte, 0, 256)
	line := func(parts ...string) {
		// NUL-separated: no name or value holds a NUL, so lines
		// cannot run into each other.
		buf = buf[:0]
		for _, p := range parts {
			buf = append(buf, p...)
			buf = append(buf, 0)
		}
		buf = append(buf, '\n')
		h.Write(buf)
	}
	line("berth-plan", b.stack, b.in.Mode.String(), strconv.FormatBool(b.in.KeepOrphans))
	for _, name := range b.names {
		inst := b.in.Stack.Instances[name]
		hash := b.hashes[name]
		if hash == "" {
			_, hash = CanonicalSpec(inst)
		}
		line("want", name, instTarget(inst), ObjectName(b.stack, inst), hash, strings.Join(slices.Sorted(maps.Keys(inst.DependsOn)), ","))
	}
	for _, iname := range slices.Sorted(maps.Keys(b.owned)) {
		for _, o := range b.owned[iname] {
			exit := "-"
			if o.ExitCode != nil {
				exit = strconv.Itoa(*o.ExitCode)
			}
			line("have", refTarget(o.Ref), o.Ref.Name, o.Ref.ID, o.Ref.Node, iname, o.Owner.SpecHash, string(o.State), exit)
			for _, k := range slices.Sorted(maps.Keys(o.Live)) {
				line("live", k, string(canonicalValue(o.Live[k])))
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
