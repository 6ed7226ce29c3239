package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/hostcmd"
)

// Exec runs a command in a running container with `<runtime> exec` and
// returns its exit code (health checks, `berth exec`). A container that is
// not running is ErrNotRunning, a missing one ErrNotFound.
func (d *Driver) Exec(ctx context.Context, ref drivers.ObjectRef, req drivers.ExecRequest) (int, error) {
	id := ref.Name
	if len(req.Argv) == 0 {
		return -1, d.wrap("exec", id, errors.New("no command"))
	}
	st, err := d.state(ctx, id)
	if err != nil {
		return -1, d.wrap("exec", id, err)
	}
	if st.Status != statusRunning {
		return -1, d.wrap("exec", id, fmt.Errorf("%w: container is %s", drivers.ErrNotRunning, st.Status))
	}
	args := []string{"exec"}
	if len(req.Env) > 0 {
		// --env replaces crun's inherited environment: pass the
		// container's own (config.json) under the request's.
		env := map[string]string{}
		for _, kv := range configEnv(d.bundleDir(id)) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		for k, v := range req.Env {
			env[k] = v
		}
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			args = append(args, "--env", k+"="+env[k])
		}
	}
	args = append(append(args, id), req.Argv...)
	cmd := d.runtimeCmd(ctx, args...)
	if req.Stdin != nil {
		cmd.SetStdin(req.Stdin)
	}
	stdout, stderr := req.Stdout, req.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	err = cmd.SetStdout(stdout).SetStderr(stderr).Run()
	if err == nil {
		return 0, nil
	}
	if code := hostcmd.ExitCode(err); code >= 0 {
		return code, nil
	}
	return -1, d.wrap("exec", id, classify(err, id, d.runtime))
}

// configEnv is process.env of a bundle's config.json.
func configEnv(bundle string) []string {
	data, err := os.ReadFile(filepath.Join(bundle, configFileName))
	if err != nil {
		return nil
	}
	var spec struct {
		Process struct {
			Env []string `json:"env"`
		} `json:"process"`
	}
	json.Unmarshal(data, &spec)
	return spec.Process.Env
}

// Logs copies the container's log file (its stdout and stderr) to w; with
// follow it keeps copying new output until ctx ends or the container
// stops.
func (d *Driver) Logs(ctx context.Context, ref drivers.ObjectRef, follow bool, w io.Writer) error {
	id := ref.Name
	if err := validID(id); err != nil {
		return d.wrap("logs", id, err)
	}
	f, err := os.Open(filepath.Join(d.bundleDir(id), logFileName))
	if errors.Is(err, os.ErrNotExist) {
		return d.wrap("logs", id, fmt.Errorf("%w: no log file", drivers.ErrNotFound))
	}
	if err != nil {
		return d.wrap("logs", id, err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil || !follow {
		return d.wrap("logs", id, err)
	}
	lastCheck := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
		if _, err := io.Copy(w, f); err != nil {
			return d.wrap("logs", id, err)
		}
		if time.Since(lastCheck) >= time.Second {
			lastCheck = time.Now()
			st, err := d.state(ctx, id)
			if err != nil || st.Status == statusStopped {
				_, err := io.Copy(w, f)
				return d.wrap("logs", id, err)
			}
		}
	}
}

// Update rewrites config.json and berth.json from the new target (so a
// later recreate from the bundle uses them) and applies memory/cpus to the
// live container with `<runtime> update -r resources.json`. Other changed
// fields take effect at the next start (kind Restart).
func (d *Driver) Update(ctx context.Context, ref drivers.ObjectRef, t drivers.Target, changed []string) error {
	id := ref.Name
	defer d.lockName(id)()
	bundle := d.bundleDir(id)
	sc, err := readSidecar(bundle)
	if err != nil {
		return d.wrap("update", id, fmt.Errorf("%w: bundle: %w", drivers.ErrNotFound, err))
	}
	img, err := d.images.Resolve(ctx, t.Instance.Image, t.StackDir)
	if err != nil {
		return d.wrap("update", id, err)
	}
	sc.Owner = t.Owner
	sc.StopSignal = img.Config.StopSignal
	if err := d.writeConfig(bundle, t, img, sc); err != nil {
		return d.wrap("update", id, err)
	}
	live := false
	for _, f := range changed {
		live = live || f == "memory" || f == "cpus"
	}
	if !live {
		return nil
	}
	st, err := d.state(ctx, id)
	if err != nil {
		return d.wrap("update", id, err)
	}
	if st.Status == statusStopped {
		return nil // the rewritten config.json applies at the next start
	}
	res := resourcesOf(t, changed)
	path := filepath.Join(bundle, resourcesName)
	if err := writeJSONFile(path, res); err != nil {
		return d.wrap("update", id, err)
	}
	return d.wrap("update", id, d.run(ctx, id, "update", "-r", path, id))
}

// resourcesOf is the linux.resources subset `update` applies for the
// changed fields. A removed memory limit becomes -1 (unlimited); a removed
// CPU limit becomes a quota of every host CPU, since crun rejects -1 there.
func resourcesOf(t drivers.Target, changed []string) *rspec.LinuxResources {
	inst := t.Instance
	res := &rspec.LinuxResources{}
	for _, f := range changed {
		switch f {
		case "memory":
			limit := int64(-1)
			if inst.Memory > 0 {
				limit = int64(inst.Memory)
			}
			res.Memory = &rspec.LinuxMemory{Limit: &limit}
			if inst.Memory > 0 && inst.Swap > 0 {
				swap := int64(inst.Memory + inst.Swap)
				res.Memory.Swap = &swap
			}
		case "cpus":
			quota := int64(runtime.NumCPU()) * cpuPeriod
			if inst.CPUs > 0 {
				quota = int64(inst.CPUs * cpuPeriod)
			}
			period := uint64(cpuPeriod)
			res.CPU = &rspec.LinuxCPU{Quota: &quota, Period: &period}
		}
	}
	return res
}
