package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/hostcmd"
	"github.com/berth-dev/berth/drivers/oci/internal/waiter"
	"github.com/berth-dev/berth/manifest"
)

// DefaultStopTimeout is how long Stop waits after SIGTERM before SIGKILL
// when the caller gives no timeout (Compose's stop_grace_period default).
const DefaultStopTimeout = 10 * time.Second

// containerState is the part of `<runtime> state` / `list -f json` berth
// reads. crun's list has no annotations; runc's has.
type containerState struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Runtime status words.
const (
	statusCreating = "creating"
	statusCreated  = "created"
	statusRunning  = "running"
	statusPaused   = "paused"
	statusStopped  = "stopped"
)

// runtimeCmd is `<runtime> --root <state dir> args...`.
func (d *Driver) runtimeCmd(ctx context.Context, args ...string) hostcmd.Cmd {
	return d.cmder.Command(ctx, d.runtime, append([]string{"--root", d.stateDir}, args...)...)
}

func (d *Driver) run(ctx context.Context, id string, args ...string) error {
	return classify(d.runtimeCmd(ctx, args...).Run(), id, d.runtime)
}

// parseList reads `list -f json` (runc prints "null" when empty).
func parseList(out []byte) ([]containerState, error) {
	out = bytes.TrimSpace(out)
	if len(out) == 0 || string(out) == "null" {
		return nil, nil
	}
	var list []containerState
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("parse list output: %w", err)
	}
	return list, nil
}

func parseState(out []byte) (*containerState, error) {
	var st containerState
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("parse state output: %w", err)
	}
	return &st, nil
}

func (d *Driver) state(ctx context.Context, id string) (*containerState, error) {
	out, err := d.runtimeCmd(ctx, "state", id).Output()
	if err != nil {
		return nil, classify(err, id, d.runtime)
	}
	return parseState(out)
}

// Observe lists every container in this driver's state directory with one
// `list -f json`, and reads each bundle's sidecar (ownership) and the
// waiter's exit record.
func (d *Driver) Observe(ctx context.Context, stack string) ([]drivers.ObservedInstance, error) {
	out, err := d.runtimeCmd(ctx, "list", "-f", "json").Output()
	if err != nil {
		return nil, d.wrap("list", "", classify(err, "", d.runtime))
	}
	list, err := parseList(out)
	if err != nil {
		return nil, d.wrap("list", "", err)
	}
	res := make([]drivers.ObservedInstance, 0, len(list))
	for _, c := range list {
		res = append(res, d.observed(c))
	}
	return res, nil
}

// observed turns one runtime entry plus its bundle files into an
// ObservedInstance.
func (d *Driver) observed(c containerState) drivers.ObservedInstance {
	bundle := c.Bundle
	if bundle == "" {
		bundle = d.bundleDir(c.ID)
	}
	o := drivers.ObservedInstance{
		Ref:     drivers.ObjectRef{Backend: d.backend, Name: c.ID},
		Created: c.Created,
	}
	sc, scErr := readSidecar(bundle)
	if scErr == nil {
		owner := sc.Owner
		o.Owner = &owner
	} else if js := c.Annotations[AnnotationOwnership]; js != "" {
		var owner drivers.Ownership
		if json.Unmarshal([]byte(js), &owner) == nil {
			o.Owner = &owner
		}
	}
	o.Live = liveFields(bundle, sc)
	switch c.Status {
	case statusCreated, statusCreating:
		o.State = drivers.StateCreated
	case statusRunning:
		o.State = drivers.StateRunning
	case statusPaused:
		o.State = drivers.StatePaused
	case statusStopped:
		o.State = drivers.StateStopped
		if _, err := os.Stat(filepath.Join(bundle, stoppedMarker)); err != nil {
			if rec := waiter.ReadExitRecord(filepath.Join(bundle, exitFileName)); rec != nil && !rec.Unknown {
				o.State = drivers.StateExited
				code := rec.ExitCode
				o.ExitCode = &code
			}
		}
	default:
		o.State = drivers.StateUnknown
	}
	return o
}

// Create writes the bundle (private rootfs over the cached image,
// config.json, berth.json) and runs the runtime's create through the
// waiter. The container is left in the "created" state.
func (d *Driver) Create(ctx context.Context, t drivers.Target) (drivers.ObjectRef, error) {
	id := t.ObjectName
	ref := drivers.ObjectRef{Backend: d.backend, Name: id}
	if t.Provider != nil {
		ref.Provider = t.Provider.Name
	}
	if err := validID(id); err != nil {
		return ref, d.wrap("create", id, err)
	}
	if t.Instance == nil {
		return ref, d.wrap("create", id, errors.New("no instance spec"))
	}
	defer d.lockName(id)()
	if _, err := os.Stat(filepath.Join(d.stateDir, id)); err == nil {
		return ref, d.wrap("create", id, fmt.Errorf("%w: container %s is in %s", drivers.ErrExists, id, d.stateDir))
	}
	img, err := d.images.Resolve(ctx, t.Instance.Image, t.StackDir)
	if err != nil {
		return ref, d.wrap("create", id, err)
	}
	bundle := d.bundleDir(id)
	// A bundle without a container is a leftover (failed create, lost
	// state): start afresh.
	if err := removeBundle(bundle); err != nil {
		return ref, d.wrap("create", id, err)
	}
	if err := d.writeBundle(bundle, t, img); err != nil {
		removeBundle(bundle)
		return ref, d.wrap("create", id, err)
	}
	if err := d.createContainer(ctx, id, bundle); err != nil {
		removeBundle(bundle)
		return ref, d.wrap("create", id, err)
	}
	d.fresh.Store(id, true)
	return ref, nil
}

func (d *Driver) writeBundle(bundle string, t drivers.Target, img *Image) error {
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return err
	}
	mode, err := d.prepareRootfs(bundle, img.Rootfs)
	if err != nil {
		return err
	}
	sc := &Sidecar{Owner: t.Owner, Image: img.Ref, ImageDigest: img.Digest, Lower: img.Rootfs, RootfsMode: mode, StopSignal: img.Config.StopSignal}
	return d.writeConfig(bundle, t, img, sc)
}

// writeConfig (re)writes config.json and berth.json.
func (d *Driver) writeConfig(bundle string, t drivers.Target, img *Image, sc *Sidecar) error {
	spec, err := buildSpec(t, img, filepath.Join(bundle, rootfsDirName), d.flavor)
	if err != nil {
		return err
	}
	spec.Linux.CgroupsPath = d.cgroupsPath(filepath.Base(bundle))
	sc.Resources = &liveResources{}
	if r := spec.Linux.Resources; r != nil {
		sc.Resources.Memory, sc.Resources.CPU = r.Memory, r.CPU
	}
	if err := writeJSONFile(filepath.Join(bundle, configFileName), spec); err != nil {
		return err
	}
	return writeJSONFile(filepath.Join(bundle, sidecarFileName), sc)
}

// createContainer runs `<runtime> create` through the waiter (package
// internal/waiter), in a private mount namespace on a hybrid cgroup host.
func (d *Driver) createContainer(ctx context.Context, id, bundle string) error {
	if d.hybrid {
		hybridNotice.Do(func() {
			d.log.Info("hybrid cgroup host: crun refuses it, so berth runs `crun create` in a private mount namespace with "+
				waiter.UnifiedMount+" detached (the host's mounts are untouched; see docs/backends/oci.md)",
				"backend", d.backend)
		})
	}
	os.Remove(filepath.Join(bundle, exitFileName))
	o := waiter.Options{
		Log:           filepath.Join(bundle, logFileName),
		ExitFile:      filepath.Join(bundle, exitFileName),
		PidFile:       filepath.Join(bundle, pidFileName),
		DetachUnified: d.hybrid,
		Argv:          []string{d.runtime, "--root", d.stateDir, "create", "--bundle", bundle, "--pid-file", filepath.Join(bundle, pidFileName), id},
	}
	args := append([]string{"-c", waiter.LaunchScript, d.exe}, waiter.Args(o)...)
	out, err := d.cmder.Command(ctx, "sh", args...).SetEnv(waiter.Env + "=wait").Output()
	if err != nil {
		return classify(err, id, d.runtime)
	}
	var res waiter.Result
	if err := json.Unmarshal(bytes.TrimSpace(out), &res); err != nil {
		return fmt.Errorf("waiter for %s gave no result (%q): %w", id, out, err)
	}
	if res.ExitCode != 0 {
		return classify(&hostcmd.RunError{Argv: o.Argv, Output: []byte(res.Output), Err: waiter.Exit(res.ExitCode)}, id, d.runtime)
	}
	return nil
}

// Start starts a created container. A stopped one cannot be started again
// by an OCI runtime: it is deleted and created again from its bundle
// (same config.json, same rootfs), which is also how config changes of
// kind Restart take effect.
func (d *Driver) Start(ctx context.Context, ref drivers.ObjectRef) error {
	id := ref.Name
	defer d.lockName(id)()
	bundle := d.bundleDir(id)
	// Just created by this driver: it is in the "created" state, no need
	// to ask the runtime.
	if _, ok := d.fresh.LoadAndDelete(id); ok {
		os.Remove(filepath.Join(bundle, stoppedMarker))
		return d.wrap("start", id, d.run(ctx, id, "start", id))
	}
	st, err := d.state(ctx, id)
	if err != nil {
		return d.wrap("start", id, err)
	}
	switch st.Status {
	case statusRunning:
		return nil
	case statusPaused:
		return d.wrap("start", id, d.run(ctx, id, "resume", id))
	case statusStopped:
		if err := d.recreate(ctx, id, bundle); err != nil {
			return d.wrap("start", id, err)
		}
	}
	os.Remove(filepath.Join(bundle, stoppedMarker))
	return d.wrap("start", id, d.run(ctx, id, "start", id))
}

// recreate deletes the runtime's record of a stopped container and creates
// it again from the bundle.
func (d *Driver) recreate(ctx context.Context, id, bundle string) error {
	sc, err := readSidecar(bundle)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", bundle, err)
	}
	if err := ensureRootfs(bundle, sc); err != nil {
		return err
	}
	if err := d.run(ctx, id, "delete", id); err != nil && !errors.Is(err, drivers.ErrNotFound) {
		return err
	}
	return d.createContainer(ctx, id, bundle)
}

// Stop sends SIGTERM (or the image's StopSignal), waits up to timeout for
// the process to end, then SIGKILL. Stopping a stopped container is a
// no-op.
func (d *Driver) Stop(ctx context.Context, ref drivers.ObjectRef, timeout time.Duration) error {
	id := ref.Name
	d.fresh.Delete(id)
	if timeout <= 0 {
		timeout = DefaultStopTimeout
	}
	bundle := d.bundleDir(id)
	// The marker goes first so that an Observe racing with the stop
	// already reports "stopped", not "exited".
	marker := filepath.Join(bundle, stoppedMarker)
	_, statErr := os.Stat(marker)
	hadMarker := statErr == nil
	if err := os.WriteFile(marker, nil, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return d.wrap("stop", id, err)
	}
	sc, _ := readSidecar(bundle)
	sig := sc.stopSignal()
	err := d.signalAndWait(ctx, id, sig, timeout)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errAlreadyStopped):
		// It ended on its own before this stop: keep it "exited".
		if !hadMarker {
			os.Remove(marker)
		}
		return nil
	case errors.Is(err, drivers.ErrNotFound):
		return d.wrap("stop", id, err)
	case errors.Is(err, drivers.ErrNotRunning):
		// Paused: resume so the signals are delivered.
		if rerr := d.run(ctx, id, "resume", id); rerr != nil {
			return d.wrap("stop", id, err)
		}
		if err := d.signalAndWait(ctx, id, sig, timeout); err == nil || errors.Is(err, errAlreadyStopped) {
			return nil
		}
	case !errors.Is(err, context.DeadlineExceeded):
		return d.wrap("stop", id, err)
	}
	if err := d.signalAndWait(ctx, id, "KILL", DefaultStopTimeout); err != nil && !errors.Is(err, errAlreadyStopped) {
		return d.wrap("stop", id, fmt.Errorf("still running after SIGKILL: %w", err))
	}
	return nil
}

// errAlreadyStopped: the signal found no process, and the runtime says
// the container is stopped.
var errAlreadyStopped = errors.New("already stopped")

// signalAndWait sends sig and waits until the process ended or timeout
// (context.DeadlineExceeded). Polls start at 1 ms and back off to 20 ms.
func (d *Driver) signalAndWait(ctx context.Context, id, sig string, timeout time.Duration) error {
	if err := d.run(ctx, id, "kill", id, sig); err != nil {
		if !errors.Is(err, drivers.ErrNotRunning) {
			return err
		}
		st, serr := d.state(ctx, id)
		if serr != nil {
			return serr
		}
		if st.Status == statusStopped {
			return errAlreadyStopped
		}
		if st.Status == statusPaused {
			return err
		}
	}
	// The waiter writes exit.json right after reaping the process, so a
	// stat tells that it ended without a `state` process per poll. Every
	// 100 ms, if no waiter holds the bundle's lock (it died, or the host
	// rebooted), the runtime's `state` is asked instead.
	bundle := d.bundleDir(id)
	exitFile := filepath.Join(bundle, exitFileName)
	deadline := time.Now().Add(timeout)
	nextState := time.Now().Add(100 * time.Millisecond)
	wait := time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		if _, err := os.Stat(exitFile); err == nil {
			return nil
		}
		if time.Now().After(nextState) && !waiter.Alive(bundle) {
			st, err := d.state(ctx, id)
			if err != nil {
				return err
			}
			if st.Status == statusStopped {
				return nil
			}
		}
		if time.Now().After(nextState) {
			nextState = time.Now().Add(100 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			return context.DeadlineExceeded
		}
		wait = min(wait*2, 20*time.Millisecond)
	}
}

// Delete removes the container (killing it if needed: `delete -f`), its
// bundle and its private rootfs. The shared image stays cached.
func (d *Driver) Delete(ctx context.Context, ref drivers.ObjectRef) error {
	id := ref.Name
	if err := validID(id); err != nil {
		return d.wrap("delete", id, err)
	}
	defer d.lockName(id)()
	d.fresh.Delete(id)
	bundle := d.bundleDir(id)
	// `delete -f` of an unknown id exits 0 on crun and runc, so look
	// first: both keep one directory per container under --root.
	if _, err := os.Stat(filepath.Join(d.stateDir, id)); err != nil {
		if _, serr := os.Stat(bundle); serr != nil {
			return d.wrap("delete", id, fmt.Errorf("%w: no container %s in %s", drivers.ErrNotFound, id, d.stateDir))
		}
		// A bundle without a container: clean it up.
		return d.wrap("delete", id, removeBundle(bundle))
	}
	if err := d.run(ctx, id, "delete", "-f", id); err != nil && !errors.Is(err, drivers.ErrNotFound) {
		return d.wrap("delete", id, err)
	}
	return d.wrap("delete", id, removeBundle(bundle))
}

// liveResources is the part of config.json's linux.resources that the
// planner compares, kept in berth.json too so that Observe reads one small
// file per container instead of parsing config.json (about 14 KB with the
// seccomp profile).
type liveResources struct {
	Memory *rspec.LinuxMemory `json:"memory,omitempty"`
	CPU    *rspec.LinuxCPU    `json:"cpu,omitempty"`
}

// liveFields reads memory and cpus back, rendered as in the canonical spec
// ("memory": "128M", "cpus": 0.5): from the sidecar when it records them,
// else (a bundle written before berth.json had them) from config.json.
// They are what berth last applied (create or `update`); a change made
// with `<runtime> update` by hand is not seen.
func liveFields(bundle string, sc *Sidecar) map[string]json.RawMessage {
	if sc != nil && sc.Resources != nil {
		return liveOf(sc.Resources)
	}
	data, err := os.ReadFile(filepath.Join(bundle, configFileName))
	if err != nil {
		return nil
	}
	var spec struct {
		Linux *struct {
			Resources *rspec.LinuxResources `json:"resources"`
		} `json:"linux"`
	}
	if json.Unmarshal(data, &spec) != nil || spec.Linux == nil || spec.Linux.Resources == nil {
		return nil
	}
	return liveOf(&liveResources{Memory: spec.Linux.Resources.Memory, CPU: spec.Linux.Resources.CPU})
}

func liveOf(res *liveResources) map[string]json.RawMessage {
	live := map[string]json.RawMessage{}
	if m := res.Memory; m != nil && m.Limit != nil && *m.Limit > 0 {
		live["memory"], _ = json.Marshal(manifest.ByteSize(*m.Limit))
	}
	if c := res.CPU; c != nil && c.Quota != nil && *c.Quota > 0 && c.Period != nil && *c.Period > 0 {
		live["cpus"], _ = json.Marshal(float64(*c.Quota) / float64(*c.Period))
	}
	if len(live) == 0 {
		return nil
	}
	return live
}
