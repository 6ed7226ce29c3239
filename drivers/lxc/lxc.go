// Package lxc is berth's backend for plain LXC system containers, driven
// through the lxc-* tools (Debian package lxc) via hostcmd.Cmder.
//
// Every command gets -P LXCPATH, and lxc-create gets berth's own base
// config with -f (never /etc/lxc/default.conf, whose lxcbr0 bridge usually
// does not exist). What berth manages in a container's config lives in one
// block at the end of LXCPATH/NAME/config, rewritten on update; ownership
// is a sidecar file LXCPATH/NAME/berth.json plus `lxc.group = berth` and
// `lxc.group = berth-<stack>` so `lxc-ls -g berth` finds berth's containers.
package lxc

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/hostcmd"
)

// BackendName is the backend name in stack files.
const BackendName = "lxc"

// CgroupMode selects which cgroup limit keys a container config uses.
type CgroupMode int

const (
	// CgroupAuto detects the host: pure cgroup v2 hosts have
	// /sys/fs/cgroup/cgroup.controllers; anything else (v1 or hybrid) uses
	// the v1 keys, since LXC silently ignores lxc.cgroup2.* there.
	CgroupAuto CgroupMode = iota
	CgroupV1
	CgroupV2
)

func (m CgroupMode) String() string {
	return [...]string{"auto", "v1", "v2"}[m]
}

// Config configures one LXC driver (one lxcpath).
type Config struct {
	// LXCPath is where containers live (-P). Empty: the system's
	// `lxc-config lxc.lxcpath` (usually /var/lib/lxc).
	LXCPath string
	// Provider is the provider name recorded in object references.
	Provider string
	// Bridge is the default bridge for veth networks that name none.
	// When set and an instance has no networks, it gets one veth on it.
	Bridge string
	// CreateBridge lets berth create a missing bridge (ip link add ...
	// type bridge; up) before starting a container attached to it.
	CreateBridge bool
	// Cgroup picks the limit key set; CgroupAuto detects it.
	Cgroup CgroupMode
	// SwapAccounting says whether the v1 memory.memsw.* keys exist;
	// nil detects it from /sys/fs/cgroup/memory.
	SwapAccounting *bool
	// StartTimeout bounds lxc-wait after lxc-start (default 10s).
	StartTimeout time.Duration
}

// Driver manages the containers of one lxcpath. It keeps no per-container
// state in memory, so it is safe for concurrent use.
type Driver struct {
	cfg    Config
	cmd    hostcmd.Cmder
	keys   cgroupKeys
	memsw  bool
	bridge bridgeSetup
}

// geteuid is swapped by tests that replay recorded output as non-root.
var geteuid = os.Geteuid

// New makes a driver. It resolves the lxcpath (asking lxc-config when
// empty) and the cgroup mode, and refuses to run as non-root.
func New(cfg Config, cmder hostcmd.Cmder) (*Driver, error) {
	if geteuid() != 0 {
		return nil, fmt.Errorf("driver lxc: %w", ErrNotRoot)
	}
	if cmder == nil {
		cmder = hostcmd.Local{}
	}
	if cfg.LXCPath == "" {
		out, err := cmder.Command(context.Background(), "lxc-config", "lxc.lxcpath").Output()
		if err != nil {
			return nil, classify("resolve", "lxcpath", err)
		}
		cfg.LXCPath = strings.TrimSpace(string(out))
		if cfg.LXCPath == "" {
			return nil, fmt.Errorf("driver lxc: lxc-config printed no lxc.lxcpath")
		}
	}
	if cfg.Cgroup == CgroupAuto {
		cfg.Cgroup = CgroupV1
		if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
			cfg.Cgroup = CgroupV2
		}
	}
	memsw := true
	if cfg.SwapAccounting != nil {
		memsw = *cfg.SwapAccounting
	} else if cfg.Cgroup == CgroupV1 {
		_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
		memsw = err == nil
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	d := &Driver{cfg: cfg, cmd: cmder, keys: keysFor(cfg.Cgroup), memsw: memsw}
	d.bridge.init()
	return d, nil
}

// LXCPath is the lxcpath this driver manages.
func (d *Driver) LXCPath() string { return d.cfg.LXCPath }

// Name is the backend name.
func (d *Driver) Name() string { return BackendName }

// Capabilities is the LXC field table: limits change in place through
// lxc-cgroup; everything LXC reads only at container start (hostname,
// environment, networks, mounts) is rewritten in the config and needs a
// restart; the root filesystem (template) and the name force a replace.
func (d *Driver) Capabilities() drivers.Capabilities {
	return drivers.Capabilities{
		Fields: map[string]drivers.ChangeKind{
			"memory":            drivers.InPlace,
			"swap":              drivers.InPlace,
			"cpus":              drivers.InPlace,
			"autostart":         drivers.InPlace, // config only: read at host boot
			"labels":            drivers.InPlace, // sidecar only
			"hostname":          drivers.Restart,
			"environment":       drivers.Restart,
			"networks":          drivers.Restart,
			"mounts":            drivers.Restart,
			"template":          drivers.Replace,
			"container_name":    drivers.Replace,
			"backend":           drivers.Replace,
			"provider":          drivers.Replace,
			"depends_on":        drivers.Ignore,
			"healthcheck":       drivers.Ignore,
			"stop_grace_period": drivers.Ignore, // used by the executor at stop time
			"restart":           drivers.Ignore, // LXC has no restart supervisor
		},
		Default:             drivers.Replace,
		CreateBeforeDestroy: false, // container names are exclusive in an lxcpath
	}
}

// dir is a container's directory in the lxcpath.
func (d *Driver) dir(name string) string { return d.cfg.LXCPath + "/" + name }

// run runs an lxc-* tool with -P prepended to its arguments and returns
// its stdout.
func (d *Driver) run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	return d.command(ctx, tool, args...).Output()
}

// command is an lxc-* tool on this driver's lxcpath.
func (d *Driver) command(ctx context.Context, tool string, args ...string) hostcmd.Cmd {
	return d.cmd.Command(ctx, tool, append([]string{"-P", d.cfg.LXCPath}, args...)...)
}

var (
	_ drivers.Driver  = (*Driver)(nil)
	_ drivers.Updater = (*Driver)(nil)
	_ drivers.Execer  = (*Driver)(nil)
	_ drivers.Logger  = (*Driver)(nil)
)
