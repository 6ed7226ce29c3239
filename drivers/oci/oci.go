// Package oci is berth's backend for OCI containers run by crun (the
// default) or runc, the way Podman and containerd drive them but with no
// daemon: berth writes the bundle (config.json generated with
// runtime-tools, a root filesystem prepared from a directory, a tarball, an
// OCI image layout or a registry image) and calls the runtime binary with a
// private --root state directory. A tiny waiter process (a re-exec of the
// berth binary, see waiter.go) runs the runtime's create, stays the
// container's subreaper and records its exit code, which the runtime itself
// forgets.
package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/hostcmd"
	"github.com/berth-dev/berth/manifest"
)

// DefaultRoot is where bundles, runtime state and the image cache live
// unless Config.Root says otherwise.
const DefaultRoot = "/var/lib/berth/oci"

// Config configures one OCI runtime backend.
type Config struct {
	// Runtime is the runtime binary, a name looked up in PATH or a path:
	// "crun" (default) or "runc".
	Runtime string
	// Backend is the name the driver answers to in stack files ("crun" or
	// "runc"); default: the runtime's base name when it is one of those,
	// else "crun".
	Backend string
	// Root holds bundles/<backend>/<id>, state/<backend> (the runtime's
	// --root) and, unless CacheDir is set, images/. Default DefaultRoot.
	Root string
	// CacheDir holds unpacked images by digest, shared by every instance
	// and both runtimes. Default Root/images.
	CacheDir string
	// RootfsMode is how an instance gets its private writable root
	// filesystem from a shared cached image: "overlay" (default; falls
	// back to "copy" when the kernel refuses the mount) or "copy".
	RootfsMode string
	// Logger receives the one-time notices (hybrid cgroup handling,
	// overlay fallback). Default slog.Default().
	Logger *slog.Logger
	// Hybrid forces the hybrid-cgroup handling on (true) or off (false);
	// nil detects it from the host.
	Hybrid *bool
}

// Driver runs OCI containers with one runtime binary. It is safe for
// concurrent use.
type Driver struct {
	cfg      Config
	cmder    hostcmd.Cmder
	runtime  string // as given (name or path)
	backend  string
	flavor   string // "crun" or "runc", from `--version`
	stateDir string
	bundles  string
	images   *imageCache
	hybrid   bool
	exe      string // this binary, re-executed as the waiter
	log      *slog.Logger
	// fresh holds the ids this driver created and has not started yet,
	// so Start needs no `state` round trip.
	fresh sync.Map
	// names serialises mutating calls on one container name (a *sync.Mutex
	// per name): a racing second Create must not clean up the first one's
	// bundle.
	names sync.Map
}

// lockName holds the per-name mutex until the returned func is called.
func (d *Driver) lockName(id string) func() {
	m, _ := d.names.LoadOrStore(id, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// hybridNotice logs the hybrid cgroup handling once per process.
var hybridNotice sync.Once

// New checks the runtime binary (`<runtime> --version`) and prepares the
// driver's directories.
func New(cfg Config, cmder hostcmd.Cmder) (*Driver, error) {
	if cmder == nil {
		cmder = hostcmd.Local{}
	}
	if cfg.Runtime == "" {
		cfg.Runtime = "crun"
	}
	base := filepath.Base(cfg.Runtime)
	if cfg.Backend == "" {
		cfg.Backend = manifest.BackendCrun
		if base == manifest.BackendRunc {
			cfg.Backend = manifest.BackendRunc
		}
	}
	if cfg.Root == "" {
		cfg.Root = DefaultRoot
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(cfg.Root, "images")
	}
	// The runtime, the waiter and the bundles need absolute paths.
	for _, p := range []*string{&cfg.Root, &cfg.CacheDir} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, fmt.Errorf("driver %s: %w", cfg.Backend, err)
		}
		*p = abs
	}
	if cfg.RootfsMode == "" {
		cfg.RootfsMode = rootfsOverlay
	}
	if cfg.RootfsMode != rootfsOverlay && cfg.RootfsMode != rootfsCopy {
		return nil, fmt.Errorf("driver %s: rootfs mode %q: want overlay or copy", cfg.Backend, cfg.RootfsMode)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &Driver{
		cfg:      cfg,
		cmder:    cmder,
		runtime:  cfg.Runtime,
		backend:  cfg.Backend,
		stateDir: filepath.Join(cfg.Root, "state", cfg.Backend),
		bundles:  filepath.Join(cfg.Root, "bundles", cfg.Backend),
		log:      cfg.Logger,
	}
	vc := versionCache{path: filepath.Join(cfg.Root, "runtime-"+cfg.Backend+".json"), key: binaryKey(cfg.Runtime)}
	version, cached := vc.load()
	if !cached {
		out, err := cmder.Command(context.Background(), cfg.Runtime, "--version").Output()
		if err != nil {
			return nil, fmt.Errorf("driver %s: %w", cfg.Backend, classify(err, "", cfg.Runtime))
		}
		version = string(out)
	}
	d.flavor = flavorOf(version, base)
	var err error
	if d.exe, err = os.Executable(); err != nil {
		return nil, fmt.Errorf("driver %s: locate own binary for the waiter: %w", cfg.Backend, err)
	}
	for _, dir := range []string{d.stateDir, d.bundles, cfg.CacheDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("driver %s: %w", cfg.Backend, err)
		}
	}
	if !cached {
		vc.store(version)
	}
	d.images = newImageCache(cfg.CacheDir)
	d.images.unxz = d.unxz
	if cfg.Hybrid != nil {
		d.hybrid = *cfg.Hybrid
	} else {
		d.hybrid = DetectHybridCgroups()
	}
	// Only crun refuses hybrid hosts; runc runs as is.
	d.hybrid = d.hybrid && d.flavor == manifest.BackendCrun
	return d, nil
}

// versionCache remembers the runtime's `--version` output in the root
// directory, keyed by the binary's resolved path, size and modification
// time, so that every berth command after the first spares one runtime
// process (a few ms on the critical path of `berth up`/`down`). A changed
// or replaced binary has another key and is asked again.
type versionCache struct {
	path string
	key  string // "" when the binary is not found in PATH: never cached
}

type versionRecord struct {
	Key     string `json:"key"`
	Version string `json:"version"`
}

// binaryKey identifies the runtime binary on disk; "" if it cannot be
// found (New then runs it through the Cmder, which reports the error).
func binaryKey(runtime string) string {
	p, err := exec.LookPath(runtime)
	if err != nil {
		return ""
	}
	if p, err = filepath.Abs(p); err != nil {
		return ""
	}
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() {
		return ""
	}
	return fmt.Sprintf("%s\x00%d\x00%d", p, st.Size(), st.ModTime().UnixNano())
}

func (c versionCache) load() (string, bool) {
	if c.key == "" {
		return "", false
	}
	data, err := os.ReadFile(c.path)
	if err != nil {
		return "", false
	}
	var rec versionRecord
	if json.Unmarshal(data, &rec) != nil || rec.Key != c.key || rec.Version == "" {
		return "", false
	}
	return rec.Version, true
}

// store is best effort: a cache that cannot be written costs one
// `--version` per run, nothing more.
func (c versionCache) store(version string) {
	if c.key == "" {
		return
	}
	writeJSONFile(c.path, versionRecord{Key: c.key, Version: version})
}

// flavorOf tells crun from runc by the first line of `--version`.
func flavorOf(version, base string) string {
	first, _, _ := strings.Cut(version, "\n")
	switch {
	case strings.HasPrefix(first, "runc"):
		return manifest.BackendRunc
	case strings.HasPrefix(first, "crun"):
		return manifest.BackendCrun
	case strings.Contains(base, "runc"):
		return manifest.BackendRunc
	}
	return manifest.BackendCrun
}

// Name is the backend name ("crun" or "runc").
func (d *Driver) Name() string { return d.backend }

// Runtime is the runtime binary the driver calls.
func (d *Driver) Runtime() string { return d.runtime }

// StateDir is the runtime's --root directory.
func (d *Driver) StateDir() string { return d.stateDir }

// Hybrid reports whether crun's create runs with the hybrid cgroup
// workaround.
func (d *Driver) Hybrid() bool { return d.hybrid }

// Capabilities: resources change in place (`<runtime> update`), the rest of
// the process spec is rewritten into config.json and takes effect when the
// container is recreated from its bundle at the next start, and a new image
// needs a new container. Names are exclusive, so no create-before-destroy.
func (d *Driver) Capabilities() drivers.Capabilities {
	return drivers.Capabilities{
		Fields: map[string]drivers.ChangeKind{
			"memory":            drivers.InPlace,
			"cpus":              drivers.InPlace,
			"swap":              drivers.Restart,
			"environment":       drivers.Restart,
			"command":           drivers.Restart,
			"entrypoint":        drivers.Restart,
			"working_dir":       drivers.Restart,
			"user":              drivers.Restart,
			"hostname":          drivers.Restart,
			"read_only":         drivers.Restart,
			"mounts":            drivers.Restart,
			"networks":          drivers.Restart,
			"labels":            drivers.Restart,
			"image":             drivers.Replace,
			"container_name":    drivers.Replace,
			"backend":           drivers.Replace,
			"provider":          drivers.Replace,
			"depends_on":        drivers.Ignore,
			"healthcheck":       drivers.Ignore,
			"restart":           drivers.Ignore,
			"autostart":         drivers.Ignore,
			"stop_grace_period": drivers.Ignore,
		},
		Default: drivers.Replace,
	}
}

var (
	_ drivers.Driver  = (*Driver)(nil)
	_ drivers.Updater = (*Driver)(nil)
	_ drivers.Execer  = (*Driver)(nil)
	_ drivers.Logger  = (*Driver)(nil)
)

// cgroupsPath is one flat cgroup per container, named after the state
// directory too: the runtimes' default ("/<id>") would put two containers
// of the same name from two roots (crun and runc, two providers, two test
// runs) into one cgroup. Flat, because crun leaves the empty parents of a
// nested path behind.
func (d *Driver) cgroupsPath(id string) string {
	h := sha256.Sum256([]byte(d.stateDir))
	return "/berth-" + hex.EncodeToString(h[:4]) + "-" + id
}

// unxz decompresses an xz tarball with the host's xz (xz-utils), for
// `tar:` images such as LXC's rootfs.tar.xz.
func (d *Driver) unxz(ctx context.Context, path string, w io.Writer) error {
	err := d.cmder.Command(ctx, "xz", "--decompress", "--stdout", path).SetStdout(w).Run()
	if errors.Is(err, exec.ErrNotFound) {
		return fmt.Errorf("%w: xz: install the Debian package xz-utils: %w", drivers.ErrToolMissing, err)
	}
	return err
}

// bundleDir is the bundle directory of container id.
func (d *Driver) bundleDir(id string) string { return filepath.Join(d.bundles, id) }

// validID rejects names that would escape the bundle directory.
func validID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("invalid container name %q", id)
	}
	return nil
}

// wrap adds the driver/operation/object prefix at the boundary.
func (d *Driver) wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if name == "" {
		return fmt.Errorf("driver %s: %s: %w", d.backend, op, err)
	}
	return fmt.Errorf("driver %s: %s %s: %w", d.backend, op, name, err)
}

var errNoCommand = errors.New("no command: the image has no Entrypoint/Cmd and the instance sets neither command nor entrypoint")
