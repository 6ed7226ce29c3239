// Package drivers is the contract between berth's planner/executor and its
// backends (LXC, OCI runtimes, Proxmox). A Driver observes everything a stack
// owns in one listing and performs single lifecycle actions; optional powers
// (in-place update, exec, logs) are separate interfaces found by type
// assertion. Backend packages live in drivers/<backend>.
package drivers

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/berth-dev/berth/manifest"
)

// Sentinel errors every driver classifies backend failures into, in one
// place per driver, so the planner and executor can act on them.
var (
	ErrNotFound    = errors.New("not found")
	ErrExists      = errors.New("already exists")
	ErrLocked      = errors.New("locked")
	ErrNotRunning  = errors.New("not running")
	ErrUnsupported = errors.New("not supported by this backend")
	// ErrToolMissing wraps a missing host tool; the message names the
	// package that provides it.
	ErrToolMissing = errors.New("tool missing")
)

// State is the lifecycle state of a backend object.
type State string

const (
	StateCreated State = "created" // exists, never started (or being created)
	StateRunning State = "running"
	StateStopped State = "stopped"
	StateExited  State = "exited" // process ended on its own; see ExitCode
	StatePaused  State = "paused"
	StateUnknown State = "unknown"
)

// ChangeKind is what a change to one spec field costs on a live object.
type ChangeKind int

const (
	// Ignore: the field never reaches the backend object (depends_on,
	// healthcheck); changing it changes nothing live.
	Ignore ChangeKind = iota
	// InPlace: the driver's Update applies it to the object as it is.
	InPlace
	// Restart: applied by Update, effective after a stop/start.
	Restart
	// Replace: the object must be recreated.
	Replace
)

func (k ChangeKind) String() string {
	return [...]string{"ignore", "in-place", "restart", "replace"}[k]
}

// Capabilities describe a driver to the planner.
type Capabilities struct {
	// Fields maps a top-level stack-file field name (as in the YAML:
	// "memory", "cpus", "image") to the cost of changing it. Fields not
	// listed cost Default.
	Fields  map[string]ChangeKind
	Default ChangeKind
	// CreateBeforeDestroy is true when a replacement can exist beside the
	// object it replaces (names are not exclusive), so a replace creates
	// first and deletes the old object after its successor is up.
	CreateBeforeDestroy bool
}

// Cost returns the ChangeKind of a field.
func (c Capabilities) Cost(field string) ChangeKind {
	if k, ok := c.Fields[field]; ok {
		return k
	}
	return c.Default
}

// Ownership is the record berth stores on every object it creates (labels,
// annotations, Proxmox tags + description, or a sidecar file). An object
// without it, or with another stack's, is foreign: never modified, adopted
// or deleted.
type Ownership struct {
	Stack    string `json:"stack"`
	Instance string `json:"instance"`
	SpecHash string `json:"spec_hash"`
	// Spec is the last-applied canonical spec of the instance (secrets
	// masked), from which the planner computes field-level diffs.
	Spec json.RawMessage `json:"spec"`
}

// ObjectRef names one backend object.
type ObjectRef struct {
	Backend  string `json:"backend"`
	Provider string `json:"provider,omitempty"`
	Name     string `json:"name"`           // backend object name, e.g. "<stack>-<instance>"
	ID       string `json:"id,omitempty"`   // backend ID where it differs from Name (Proxmox VMID)
	Node     string `json:"node,omitempty"` // Proxmox node
}

// ObservedInstance is one backend object as a driver saw it.
type ObservedInstance struct {
	Ref      ObjectRef  `json:"ref"`
	Owner    *Ownership `json:"owner,omitempty"` // nil: not made by berth
	State    State      `json:"state"`
	ExitCode *int       `json:"exit_code,omitempty"`
	IPs      []string   `json:"ips,omitempty"`
	Created  time.Time  `json:"created,omitempty"`
	// Live holds the live value of every field the driver can read back,
	// keyed and rendered exactly as in the canonical spec (e.g. "memory":
	// "512M"), so the planner can spot drift made outside berth.
	Live map[string]json.RawMessage `json:"live,omitempty"`
}

// Target is what the executor asks a driver to create or update.
type Target struct {
	Stack    string
	Instance *manifest.Instance
	Provider *manifest.Provider // nil for local backends with no provider block
	// StackDir resolves relative paths in the instance (rootfs, images).
	StackDir string
	// ObjectName is the backend object name to use.
	ObjectName string
	Owner      Ownership
}

// Driver is one backend. Implementations must be safe for concurrent use:
// the executor calls them from many goroutines.
type Driver interface {
	// Name is the backend name as written in the stack file.
	Name() string
	Capabilities() Capabilities
	// Observe lists every object of this backend that berth can see, in
	// one listing, with ownership parsed. Objects of other stacks and
	// foreign objects are included (Owner nil or a different Stack) so
	// the planner can report name clashes.
	Observe(ctx context.Context, stack string) ([]ObservedInstance, error)
	// Create makes the object (not started) and returns its reference.
	Create(ctx context.Context, t Target) (ObjectRef, error)
	Start(ctx context.Context, ref ObjectRef) error
	// Stop stops gracefully, killing after timeout.
	Stop(ctx context.Context, ref ObjectRef, timeout time.Duration) error
	// Delete removes a stopped or running object and everything it owns.
	Delete(ctx context.Context, ref ObjectRef) error
}

// Updater applies changed fields to a live object in place (InPlace and
// Restart fields of Capabilities). changed lists the field names.
type Updater interface {
	Update(ctx context.Context, ref ObjectRef, t Target, changed []string) error
}

// ExecRequest is one command run inside an instance.
type ExecRequest struct {
	Argv   []string
	Env    map[string]string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Execer runs a command inside a running instance (health checks,
// `berth exec`) and returns its exit code.
type Execer interface {
	Exec(ctx context.Context, ref ObjectRef, req ExecRequest) (exitCode int, err error)
}

// Logger streams an instance's console/stdout log.
type Logger interface {
	Logs(ctx context.Context, ref ObjectRef, follow bool, w io.Writer) error
}
