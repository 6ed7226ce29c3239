package lxc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/manifest"
)

// templateArgs returns the lxc-create template name and the arguments
// after `--` for an instance's template. Relative paths resolve against
// the stack file's directory; local files are checked up front so a typo
// is a clear error rather than a template's shell trace.
func templateArgs(tpl *manifest.Template, stackDir string) (string, []string, error) {
	if tpl == nil {
		return "busybox", nil, nil
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(stackDir, p)
	}
	switch tpl.Type {
	case "", "busybox":
		return "busybox", nil, nil
	case "download":
		if tpl.Dist == "" || tpl.Release == "" {
			return "", nil, fmt.Errorf("template download: needs dist and release (e.g. dist: debian, release: bookworm)")
		}
		arch := tpl.Arch
		if arch == "" {
			arch = hostArch()
		}
		return "download", []string{"--dist", tpl.Dist, "--release", tpl.Release, "--arch", arch}, nil
	case "local":
		rootfs, meta := abs(tpl.Rootfs), abs(tpl.Meta)
		if rootfs == "" || meta == "" {
			return "", nil, fmt.Errorf("template local: needs rootfs (a rootfs tarball) and meta (a tarball holding a file named config)")
		}
		for _, p := range []string{rootfs, meta} {
			if _, err := os.Stat(p); err != nil {
				return "", nil, fmt.Errorf("template local: %w: %v", ErrTemplateUnavailable, err)
			}
		}
		return "local", []string{"--metadata", meta, "--fstree", rootfs}, nil
	case "oci":
		img := tpl.Image
		if img == "" {
			return "", nil, fmt.Errorf("template oci: needs image (an OCI layout as path:tag, or a docker:// / oci: URL)")
		}
		if !strings.Contains(img, "://") && !strings.HasPrefix(img, "oci:") {
			path, tag, _ := strings.Cut(img, ":")
			path = abs(path)
			if _, err := os.Stat(filepath.Join(path, "index.json")); err != nil {
				return "", nil, fmt.Errorf("template oci: %w: %s is not an OCI layout: %v", ErrTemplateUnavailable, path, err)
			}
			if tag == "" {
				tag = "latest"
			}
			img = "oci:" + path + ":" + tag
		}
		return "oci", []string{"--url", img}, nil
	}
	return "", nil, fmt.Errorf("template type %q: want busybox, download, local or oci", tpl.Type)
}

// hostArch is the download template's name for this machine.
func hostArch() string {
	switch runtime.GOARCH {
	case "arm":
		return "armhf"
	case "386":
		return "i386"
	}
	return runtime.GOARCH // amd64, arm64, ppc64le, s390x, riscv64
}

// Create makes the container with lxc-create from its template and berth's
// base config, then writes the managed config block and the ownership
// sidecar. A name already present in the lxcpath is ErrExists and is never
// touched. A create that fails removes what it made: the directory it
// made for the container and whatever lxc-create put there.
func (d *Driver) Create(ctx context.Context, t drivers.Target) (drivers.ObjectRef, error) {
	name := t.ObjectName
	ref := d.ref(name)
	fail := func(err error) (drivers.ObjectRef, error) {
		return ref, fmt.Errorf("driver lxc: create %s: %w", name, err)
	}
	if t.Instance == nil {
		return fail(errors.New("no instance in target"))
	}
	if err := checkName(name); err != nil {
		return fail(err)
	}
	tplName, tplArgs, err := templateArgs(t.Instance.Template, t.StackDir)
	if err != nil {
		return fail(err)
	}
	block, err := d.block(t)
	if err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(d.cfg.LXCPath, 0o755); err != nil {
		return fail(err)
	}
	// berth makes the container directory itself (lxc-create fills an
	// existing one) and puts the create-intent record in it first: a berth
	// killed from here until berth.json is written leaves a directory
	// Observe still knows as berth's (see pendingPath). Nothing else is
	// written to the lxcpath or a temporary directory: see writeBlock.
	if err := os.Mkdir(d.dir(name), 0o770); errors.Is(err, fs.ErrExist) {
		return fail(fmt.Errorf("%w: %s is already in %s (berth never adopts or destroys a container it did not create)", drivers.ErrExists, name, d.cfg.LXCPath))
	} else if err != nil {
		return fail(err)
	}
	pending, err := sidecarJSON(sidecar{Created: time.Now().UTC().Truncate(time.Second), Provider: d.cfg.Provider, Owner: t.Owner})
	if err == nil {
		err = writeAtomic(d.pendingPath(name), pending, 0o600)
	}
	if err != nil {
		d.cleanup(name)
		return fail(err)
	}
	// The base config goes in on stdin: no file to write and remove.
	args := []string{"-n", name, "-t", tplName, "-f", "/dev/stdin"}
	if len(tplArgs) > 0 {
		args = append(append(args, "--"), tplArgs...)
	}
	if _, err := d.command(ctx, "lxc-create", args...).SetStdin(strings.NewReader(baseConfig(t.Stack))).Output(); err != nil {
		err = classify("create", name, err)
		d.cleanup(name)
		if errors.Is(err, ErrTemplateFailed) || errors.Is(err, ErrTemplateUnavailable) {
			err = fmt.Errorf("%w (template %s)", err, tplName)
		}
		return ref, err
	}
	err = writeBlock(d.dir(name)+"/config", block)
	if err == nil && tplName == "busybox" {
		err = d.busyboxDHCP(name)
	}
	if err == nil {
		// The create-intent record becomes berth.json: a rename, so no
		// file is deleted during a create (see writeBlock).
		err = os.Rename(d.pendingPath(name), d.dir(name)+"/"+sidecarName)
	}
	if err != nil {
		d.cleanup(name)
		return fail(err)
	}
	return ref, nil
}

// validName is what berth accepts as an LXC container name: a hostname-
// like word, so the name can never leave the lxcpath.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func checkName(name string) error {
	if !validName.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("invalid container name %q: use letters, digits, '-', '_' and '.' (at most 64)", name)
	}
	return nil
}

// cleanup removes a container this driver has just made and failed to
// finish: lxc-destroy once lxc-create made it, then the directory berth
// made for it, with whatever a failed lxc-create left there.
func (d *Driver) cleanup(name string) {
	if _, err := os.Stat(d.dir(name) + "/config"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		d.run(ctx, "lxc-destroy", "-n", name, "-f")
	}
	os.RemoveAll(d.dir(name))
}

// Start starts the container in the background and waits until LXC says
// RUNNING. A failed start's reason is only in the start log, so it is
// read back into the error.
func (d *Driver) Start(ctx context.Context, ref drivers.ObjectRef) error {
	name := ref.Name
	if err := d.ensureBridges(ctx, name); err != nil {
		return fmt.Errorf("driver lxc: start %s: %w", name, err)
	}
	logPath := d.startLog(name)
	var offset int64
	if fi, err := os.Stat(logPath); err == nil {
		offset = fi.Size()
	}
	if _, err := d.run(ctx, "lxc-start", "-n", name, "-d", "-o", logPath, "-l", "INFO"); err != nil {
		cerr := classify("start", name, err)
		if errors.Is(cerr, drivers.ErrNotFound) || errors.Is(cerr, drivers.ErrToolMissing) {
			return cerr
		}
		if msg := startErrors(logPath, offset); msg != "" {
			return fmt.Errorf("driver lxc: start %s: %w: %s", name, ErrStartFailed, msg)
		}
		return fmt.Errorf("driver lxc: start %s: %w: %v", name, ErrStartFailed, err)
	}
	secs := strconv.Itoa(int(math.Ceil(d.cfg.StartTimeout.Seconds())))
	if _, err := d.run(ctx, "lxc-wait", "-n", name, "-s", "RUNNING", "-t", secs); err != nil {
		return classify("start", name, fmt.Errorf("not RUNNING after %s: %w", d.cfg.StartTimeout, err))
	}
	return nil
}

// logPrefix is the subsystem and source location of an LXC log message.
var logPrefix = regexp.MustCompile(`^\S+ - \S+:\d+ - `)

// startErrors returns the ERROR lines lxc-start appended to its log after
// offset, joined: the only place LXC says why a start failed.
func startErrors(path string, offset int64) string {
	data, err := os.ReadFile(path)
	if err != nil || int64(len(data)) < offset {
		return ""
	}
	var msgs []string
	for _, l := range strings.Split(string(data[offset:]), "\n") {
		if i := strings.Index(l, " ERROR "); i >= 0 {
			m := strings.TrimSpace(l[i+len(" ERROR "):])
			m = logPrefix.ReplaceAllString(m, "") // "network - ../src/lxc/network.c:func:711 - "
			msgs = append(msgs, m)
		}
	}
	if len(msgs) > 3 {
		msgs = msgs[:3]
	}
	return strings.Join(msgs, "; ")
}

// Stop asks the container to shut down and kills it after timeout
// (lxc-stop -t); a zero timeout kills at once. Stopping a stopped
// container succeeds.
func (d *Driver) Stop(ctx context.Context, ref drivers.ObjectRef, timeout time.Duration) error {
	args := []string{"-n", ref.Name}
	if timeout <= 0 {
		args = append(args, "-k")
	} else {
		args = append(args, "-t", strconv.Itoa(int(math.Ceil(timeout.Seconds()))))
	}
	if _, err := os.Lstat(d.dir(ref.Name)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("driver lxc: stop %s: %w", ref.Name, drivers.ErrNotFound)
	}
	_, err := d.run(ctx, "lxc-stop", args...)
	if err = classify("stop", ref.Name, err); errors.Is(err, drivers.ErrNotRunning) {
		return nil
	}
	return err
}

// Delete stops (if needed) and destroys the container with its directory.
// It refuses a container without berth's ownership record: foreign
// containers are never destroyed.
func (d *Driver) Delete(ctx context.Context, ref drivers.ObjectRef) error {
	name := ref.Name
	if err := checkName(name); err != nil {
		return fmt.Errorf("driver lxc: delete %s: %w", name, err)
	}
	if _, err := os.Lstat(d.dir(name)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("driver lxc: delete %s: %w", name, drivers.ErrNotFound)
	}
	sc, err := d.readOwnerRecord(name)
	if err != nil {
		return fmt.Errorf("driver lxc: delete %s: refusing to destroy a container without berth's ownership record (%s): %w", name, sidecarName, err)
	}
	if err := d.checkProvider(sc); err != nil {
		return fmt.Errorf("driver lxc: delete %s: %w", name, err)
	}
	c, err := readConfig(d.dir(name) + "/config")
	if errors.Is(err, fs.ErrNotExist) {
		// A create that died before lxc-create finished: the directory
		// berth made, its create-intent record and what lxc-create left.
		if err := os.RemoveAll(d.dir(name)); err != nil {
			return fmt.Errorf("driver lxc: delete %s: %w", name, err)
		}
		return nil
	}
	links := vethLinks(c)
	if _, err = d.run(ctx, "lxc-destroy", "-n", name, "-f"); err != nil {
		return classify("delete", name, err)
	}
	for _, br := range links {
		if br == d.cfg.Bridge && d.cfg.CreateBridge {
			if err := d.releaseBridge(ctx, br, name); err != nil {
				return fmt.Errorf("driver lxc: delete %s: %w", name, err)
			}
		}
	}
	return nil
}

// Update rewrites the managed config block and the ownership record, and
// applies limit changes (memory, swap, cpus) to a running container with
// lxc-cgroup. Other fields take effect at the next start (the planner
// marks those updates Restart).
func (d *Driver) Update(ctx context.Context, ref drivers.ObjectRef, t drivers.Target, changed []string) error {
	name := ref.Name
	fail := func(err error) error { return fmt.Errorf("driver lxc: update %s: %w", name, err) }
	if t.Instance == nil {
		return fail(errors.New("no instance in target"))
	}
	t.ObjectName = name
	sc, err := d.readSidecar(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, derr := os.Lstat(d.dir(name)); errors.Is(derr, fs.ErrNotExist) {
				return fail(drivers.ErrNotFound)
			}
		}
		return fail(fmt.Errorf("refusing to update a container without berth's ownership record: %w", err))
	}
	if err := d.checkProvider(sc); err != nil {
		return fail(err)
	}
	block, err := d.block(t)
	if err != nil {
		return fail(err)
	}
	if err := writeBlock(d.dir(name)+"/config", block); err != nil {
		return fail(err)
	}
	if tpl, _, _ := templateArgs(t.Instance.Template, t.StackDir); tpl == "busybox" {
		if err := d.busyboxDHCP(name); err != nil {
			return fail(err)
		}
	}
	sc.Owner = t.Owner
	if err := d.writeSidecar(name, *sc); err != nil {
		return fail(err)
	}
	if !touchesLimits(changed) {
		return nil
	}
	out, err := d.run(ctx, "lxc-info", "-n", name, "-sH")
	if err != nil {
		return classify("update", name, err)
	}
	if strings.TrimSpace(string(out)) != "RUNNING" {
		return nil // the config applies at the next start
	}
	if err := d.applyLimits(ctx, name, t.Instance); err != nil {
		return fail(err)
	}
	return nil
}

func touchesLimits(changed []string) bool {
	for _, f := range changed {
		switch f {
		case "memory", "swap", "cpus":
			return true
		}
	}
	return false
}

// applyLimits sets memory, swap and CPU limits on a running container.
// On cgroup v1 the memory limit must stay <= memsw, so when memory cannot
// be set first, memsw is set first and memory retried. A limit removed
// from the stack file is reset to unlimited.
func (d *Driver) applyLimits(ctx context.Context, name string, inst *manifest.Instance) error {
	k := d.keys
	set := func(key, val string) error {
		_, err := d.run(ctx, "lxc-cgroup", "-n", name, "--", key, val)
		return classify("set "+key+" on", name, err)
	}
	mem := k.unlimited
	if inst.Memory > 0 {
		mem = strconv.FormatInt(int64(inst.Memory), 10)
	}
	swap := k.unlimited
	if inst.Swap > 0 {
		if k.cpuMax == "" {
			swap = strconv.FormatInt(int64(inst.Memory+inst.Swap), 10)
		} else {
			swap = strconv.FormatInt(int64(inst.Swap), 10)
		}
	}
	haveSwap := k.cpuMax != "" || d.memsw
	if inst.Swap > 0 && !haveSwap {
		return fmt.Errorf("swap: %w: no swap accounting on this host", drivers.ErrUnsupported)
	}
	if err := set(k.memory, mem); err != nil {
		if !haveSwap || k.cpuMax != "" {
			return err
		}
		if err := set(k.swap, swap); err != nil {
			return err
		}
		if err := set(k.memory, mem); err != nil {
			return err
		}
	}
	if haveSwap {
		if err := set(k.swap, swap); err != nil {
			return err
		}
	}
	if k.cpuMax != "" {
		v := "max " + strconv.Itoa(cfsPeriod)
		if inst.CPUs > 0 {
			v = fmt.Sprintf("%d %d", cpuQuota(inst.CPUs), cfsPeriod)
		}
		return set(k.cpuMax, v)
	}
	quota := k.unlimited
	if inst.CPUs > 0 {
		quota = strconv.FormatInt(cpuQuota(inst.CPUs), 10)
		if err := set(k.cpuPeriod, strconv.Itoa(cfsPeriod)); err != nil {
			return err
		}
	}
	return set(k.cpuQuota, quota)
}

// cpuQuota is the CFS quota for a cpus value at cfsPeriod.
func cpuQuota(cpus float64) int64 {
	q := int64(math.Round(cpus * cfsPeriod))
	if q < 1000 {
		q = 1000 // the kernel's minimum quota (1 ms)
	}
	return q
}

// checkProvider refuses a container another provider (sharing this
// lxcpath) made.
func (d *Driver) checkProvider(sc *sidecar) error {
	if sc.Provider != d.cfg.Provider {
		return fmt.Errorf("refusing to touch a container made through provider %q (this is %q; both use %s)", sc.Provider, d.cfg.Provider, d.cfg.LXCPath)
	}
	return nil
}
