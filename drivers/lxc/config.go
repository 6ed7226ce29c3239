package lxc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/manifest"
)

// blockMarker starts the berth-managed block at the end of a container's
// config. Everything from it to the end of the file is berth's: Update
// replaces it, so hand edits belong above it.
const blockMarker = "# berth: managed settings below; berth rewrites them on update"

// cfsPeriod is the CFS period used for cpus (100 ms, the kernel default).
const cfsPeriod = 100000

// cgroupKeys are the cgroup controller files limits go to, without the
// lxc.cgroup./lxc.cgroup2. prefix (which is the same name lxc-cgroup
// takes).
type cgroupKeys struct {
	prefix    string // "lxc.cgroup." or "lxc.cgroup2."
	memory    string
	swap      string // v1: memory+swap (memsw); v2: swap alone
	cpuQuota  string // v1 only
	cpuPeriod string // v1 only
	cpuMax    string // v2 only: "QUOTA PERIOD"
	unlimited string // the value that removes a limit at runtime
}

func keysFor(m CgroupMode) cgroupKeys {
	if m == CgroupV2 {
		return cgroupKeys{prefix: "lxc.cgroup2.", memory: "memory.max", swap: "memory.swap.max", cpuMax: "cpu.max", unlimited: "max"}
	}
	return cgroupKeys{prefix: "lxc.cgroup.", memory: "memory.limit_in_bytes", swap: "memory.memsw.limit_in_bytes",
		cpuQuota: "cpu.cfs_quota_us", cpuPeriod: "cpu.cfs_period_us", unlimited: "-1"}
}

// cgroupSetting is one controller file and the value it gets.
type cgroupSetting struct{ key, value string }

// limits renders an instance's memory, swap and cpus as controller
// settings, in the order they are safe to apply to a running container
// whose limits are being raised (swap before memory on v1 when raising;
// see applyLimits for lowering).
func (d *Driver) limits(inst *manifest.Instance) ([]cgroupSetting, error) {
	k := d.keys
	var s []cgroupSetting
	if inst.Memory > 0 {
		s = append(s, cgroupSetting{k.memory, strconv.FormatInt(int64(inst.Memory), 10)})
	}
	if inst.Swap > 0 {
		if inst.Memory == 0 {
			return nil, fmt.Errorf("swap needs memory: LXC limits memory+swap together")
		}
		if k.cpuMax == "" { // v1: memsw is memory + swap
			if !d.memsw {
				return nil, fmt.Errorf("swap: %w: this host has no swap accounting (memory.memsw.*); boot with swapaccount=1 or drop swap", drivers.ErrUnsupported)
			}
			s = append(s, cgroupSetting{k.swap, strconv.FormatInt(int64(inst.Memory+inst.Swap), 10)})
		} else {
			s = append(s, cgroupSetting{k.swap, strconv.FormatInt(int64(inst.Swap), 10)})
		}
	}
	if inst.CPUs > 0 {
		quota := cpuQuota(inst.CPUs)
		if k.cpuMax != "" {
			s = append(s, cgroupSetting{k.cpuMax, fmt.Sprintf("%d %d", quota, cfsPeriod)})
		} else {
			s = append(s, cgroupSetting{k.cpuPeriod, strconv.Itoa(cfsPeriod)}, cgroupSetting{k.cpuQuota, strconv.FormatInt(quota, 10)})
		}
	}
	return s, nil
}

// baseConfig is the file lxc-create gets with -f instead of Debian's
// default.conf: no network (the managed block sets the real one) and the
// group lines that let one `lxc-ls -g berth` pass find berth's containers.
// Templates may move these lines around; they never change afterwards.
func baseConfig(stack string) string {
	var b strings.Builder
	b.WriteString("# berth base config (instead of /etc/lxc/default.conf)\n")
	b.WriteString("lxc.net.0.type = empty\n")
	b.WriteString("lxc.group = berth\n")
	if stack != "" {
		b.WriteString("lxc.group = " + groupFor(stack) + "\n")
	}
	return b.String()
}

// groupFor is the per-stack lxc.group.
func groupFor(stack string) string { return "berth-" + stack }

// block renders the berth-managed config block for a target: limits,
// hostname, environment, autostart, networks, mounts, console log.
func (d *Driver) block(t drivers.Target) ([]string, error) {
	inst := t.Instance
	name := t.ObjectName
	lines := []string{blockMarker}
	add := func(k, v string) { lines = append(lines, k+" = "+v) }

	lim, err := d.limits(inst)
	if err != nil {
		return nil, err
	}
	for _, s := range lim {
		add(d.keys.prefix+s.key, s.value)
	}
	if inst.Hostname != "" {
		if strings.ContainsAny(inst.Hostname, " \t\n") {
			return nil, fmt.Errorf("hostname %q: must not contain spaces", inst.Hostname)
		}
		add("lxc.uts.name", inst.Hostname)
	}
	keys := make([]string, 0, len(inst.Environment))
	for k := range inst.Environment {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := inst.Environment[k]
		if strings.ContainsAny(k+v, "\n\r") || k == "" || strings.Contains(k, "=") {
			return nil, fmt.Errorf("environment %q: LXC config values must be one line and names must not contain '='", k)
		}
		add("lxc.environment", k+"="+v)
	}
	if inst.Autostart != nil {
		add("lxc.start.auto", boolDigit(*inst.Autostart))
	}
	netLines, err := d.networkLines(inst)
	if err != nil {
		return nil, err
	}
	lines = append(lines, netLines...)
	for i, m := range inst.Mounts {
		entry, err := mountEntry(m, t.StackDir)
		if err != nil {
			return nil, fmt.Errorf("mounts[%d]: %w", i, err)
		}
		add("lxc.mount.entry", entry)
	}
	add("lxc.console.logfile", d.dir(name)+"/console.log")
	return lines, nil
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// networkLines renders lxc.net.*: first a bare `lxc.net =` that clears
// whatever the base config or template defined, then each interface.
// No networks: one veth on the provider's bridge when it has one, else
// `empty` (loopback only).
func (d *Driver) networkLines(inst *manifest.Instance) ([]string, error) {
	nets := inst.Networks
	if len(nets) == 0 {
		if d.cfg.Bridge == "" {
			nets = []manifest.Network{{Type: "none"}}
		} else {
			nets = []manifest.Network{{Type: "veth"}}
		}
	}
	lines := []string{"lxc.net ="}
	if len(nets) == 1 && nets[0].Type == "none" {
		return append(lines, "lxc.net.0.type = empty"), nil
	}
	for i, n := range nets {
		p := fmt.Sprintf("lxc.net.%d.", i)
		add := func(k, v string) { lines = append(lines, p+k+" = "+v) }
		switch n.Type {
		case "none":
			return nil, fmt.Errorf("networks[%d]: type none cannot be combined with other networks", i)
		case "", "veth":
		default:
			return nil, fmt.Errorf("networks[%d]: type %q: LXC supports none and veth", i, n.Type)
		}
		br := n.Bridge
		if br == "" {
			br = d.cfg.Bridge
		}
		if br == "" {
			return nil, fmt.Errorf("networks[%d]: veth needs a bridge (set bridge here or on the lxc provider)", i)
		}
		add("type", "veth")
		add("link", br)
		add("flags", "up")
		ifname := n.Name
		if ifname == "" {
			ifname = fmt.Sprintf("eth%d", i)
		}
		add("name", ifname)
		if n.HWAddr != "" {
			add("hwaddr", n.HWAddr)
		}
		if n.MTU > 0 {
			add("mtu", strconv.Itoa(n.MTU))
		}
		if n.VLAN > 0 {
			add("veth.vlan.id", strconv.Itoa(n.VLAN))
		}
		if n.IP != "" && n.IP != "dhcp" {
			pfx, err := netip.ParsePrefix(n.IP)
			if err != nil || !pfx.Addr().Is4() {
				return nil, fmt.Errorf("networks[%d]: ip %q: want dhcp or an IPv4 CIDR such as 10.0.3.10/24", i, n.IP)
			}
			add("ipv4.address", n.IP)
		}
		if n.Gateway != "" {
			if _, err := netip.ParseAddr(n.Gateway); err != nil {
				return nil, fmt.Errorf("networks[%d]: gateway %q: not an IP address", i, n.Gateway)
			}
			add("ipv4.gateway", n.Gateway)
		}
		if n.IP6 != "" && n.IP6 != "dhcp" && n.IP6 != "auto" {
			if _, err := netip.ParsePrefix(n.IP6); err != nil {
				return nil, fmt.Errorf("networks[%d]: ip6 %q: want dhcp, auto or an IPv6 CIDR", i, n.IP6)
			}
			add("ipv6.address", n.IP6)
		}
		if n.Gateway6 != "" {
			add("ipv6.gateway", n.Gateway6)
		}
	}
	return lines, nil
}

// mountEntry renders one lxc.mount.entry (fstab syntax; the target is
// relative to the container's rootfs). Relative sources resolve against
// the stack file's directory; create=dir|file makes the mount point.
func mountEntry(m manifest.Mount, stackDir string) (string, error) {
	target := strings.TrimLeft(filepath.Clean("/"+m.Target), "/")
	if target == "" || strings.ContainsAny(m.Target+m.Source, " \t\n") {
		return "", fmt.Errorf("target %q: need a path inside the container without spaces", m.Target)
	}
	opts := append([]string(nil), m.Options...)
	switch m.Type {
	case "tmpfs":
		opts = append(opts, "create=dir")
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		return fmt.Sprintf("tmpfs %s tmpfs %s 0 0", target, strings.Join(opts, ",")), nil
	case "", "bind":
		src := m.Source
		if src == "" {
			return "", fmt.Errorf("bind mount to %q needs a source", m.Target)
		}
		if !filepath.IsAbs(src) {
			src = filepath.Join(stackDir, src)
		}
		create := "create=dir"
		if fi, err := os.Stat(src); err == nil && !fi.IsDir() {
			create = "create=file"
		}
		o := []string{"bind"}
		if m.ReadOnly {
			o = append(o, "ro")
		}
		o = append(o, opts...)
		o = append(o, create)
		return fmt.Sprintf("%s %s none %s 0 0", src, target, strings.Join(o, ",")), nil
	default:
		return "", fmt.Errorf("type %q: LXC supports bind and tmpfs", m.Type)
	}
}

// writeBlock replaces the managed block of a container config, writing
// the file atomically, or appends one to a config that has none yet (fresh
// from lxc-create) in place.
//
// In place, because replacing a file through a rename frees an inode, and
// ext4 without a journal (common on VM disks) scans past every inode freed
// in the last minute on each later inode allocation in that block group
// (recently_deleted() in fs/ext4/ialloc.c): see "Filesystem churn" in
// docs/backends/lxc.md. A crash mid-append leaves a container without
// berth.json, which the next up replaces (see pendingPath).
func writeBlock(path string, block []string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i := bytes.Index(data, []byte(blockMarker))
	if i >= 0 {
		data = data[:i]
	}
	data = bytes.TrimRight(data, "\n")
	var b bytes.Buffer
	b.WriteString("\n\n")
	for _, l := range block {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if i >= 0 {
		return writeAtomic(path, append(data, b.Bytes()...), 0o640)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b.Bytes(), int64(len(data)))
	if err == nil {
		err = f.Truncate(int64(len(data) + b.Len()))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeAtomic writes a file through a temporary name and a rename, so a
// crash never leaves half a config LXC cannot parse.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), perm)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// containerConfig is a parsed LXC config: every key's values in order.
type containerConfig map[string][]string

// readConfig parses LXCPATH/NAME/config. lxc.include files are not
// followed: berth only reads back keys it writes itself.
func readConfig(path string) (containerConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := containerConfig{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if v == "" { // a bare key clears a list option
			delete(c, k)
			continue
		}
		c[k] = append(c[k], v)
	}
	return c, sc.Err()
}

// last is a key's effective value (the last one wins for single options).
func (c containerConfig) last(key string) (string, bool) {
	v := c[key]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// live reads back the values berth can compare with the canonical spec:
// memory, swap and cpus rendered as the stack file writes them.
func (d *Driver) live(c containerConfig) map[string]json.RawMessage {
	k := d.keys
	out := map[string]json.RawMessage{}
	put := func(field string, v any) {
		b, err := json.Marshal(v)
		if err == nil {
			out[field] = b
		}
	}
	var mem int64
	if v, ok := c.last(k.prefix + k.memory); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			mem = n
			put("memory", manifest.ByteSize(n))
		} else if b, err := manifest.ParseByteSize(v); err == nil && b > 0 {
			mem = int64(b)
			put("memory", b)
		}
	}
	if v, ok := c.last(k.prefix + k.swap); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			if k.cpuMax == "" { // v1 memsw = memory + swap
				n -= mem
			}
			if n > 0 {
				put("swap", manifest.ByteSize(n))
			}
		}
	}
	if cpus, ok := d.liveCPUs(c); ok {
		put("cpus", cpus)
	}
	return out
}

// liveCPUs turns the CFS quota/period back into a cpus value.
func (d *Driver) liveCPUs(c containerConfig) (float64, bool) {
	k := d.keys
	var quota, period float64
	if k.cpuMax != "" {
		v, ok := c.last(k.prefix + k.cpuMax)
		if !ok {
			return 0, false
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[0] == "max" {
			return 0, false
		}
		q, err1 := strconv.ParseFloat(f[0], 64)
		p, err2 := strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		quota, period = q, p
	} else {
		qv, ok := c.last(k.prefix + k.cpuQuota)
		if !ok {
			return 0, false
		}
		q, err := strconv.ParseFloat(qv, 64)
		if err != nil || q <= 0 {
			return 0, false
		}
		period = 100000
		if pv, ok := c.last(k.prefix + k.cpuPeriod); ok {
			if p, err := strconv.ParseFloat(pv, 64); err == nil && p > 0 {
				period = p
			}
		}
		quota = q
	}
	if period <= 0 {
		return 0, false
	}
	return math.Round(quota/period*1e5) / 1e5, true
}

// busyboxDHCP rewrites the DHCP line of a busybox container's
// /etc/init.d/rcS. The busybox template runs a bare `/bin/udhcpc` on eth0,
// which blocks boot when no DHCP server answers and, worse, flushes a
// static address LXC configured on eth0. berth runs `udhcpc -b` (go to the
// background without a lease) only on interfaces without a static address.
// Files that no longer hold a udhcpc line (edited by hand) are left alone.
func (d *Driver) busyboxDHCP(name string) error {
	c, err := readConfig(d.dir(name) + "/config")
	if err != nil {
		return err
	}
	rootfs, _ := c.last("lxc.rootfs.path")
	rootfs = strings.TrimPrefix(rootfs, "dir:")
	if rootfs == "" || !filepath.IsAbs(rootfs) {
		return nil
	}
	path := filepath.Join(rootfs, "etc/init.d/rcS")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var dhcp []string
	for i := 0; ; i++ {
		p := fmt.Sprintf("lxc.net.%d.", i)
		typ, ok := c.last(p + "type")
		if !ok {
			break
		}
		if typ != "veth" {
			continue
		}
		if _, static := c.last(p + "ipv4.address"); static {
			continue
		}
		ifname, ok := c.last(p + "name")
		if !ok {
			ifname = fmt.Sprintf("eth%d", i)
		}
		dhcp = append(dhcp, ifname)
	}
	lines := strings.Split(string(data), "\n")
	var out []string
	found := false
	for _, l := range lines {
		if strings.Contains(l, "udhcpc") {
			if !found {
				if len(dhcp) == 0 { // keep a udhcpc line for the next rewrite
					out = append(out, "# berth: no DHCP interface, udhcpc off")
				}
				for _, ifname := range dhcp {
					out = append(out, "/bin/udhcpc -b -i "+ifname+" # berth: dhcp on "+ifname)
				}
			}
			found = true
			continue
		}
		out = append(out, l)
	}
	if !found {
		return nil
	}
	// In place, not through a rename: see writeBlock.
	return os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o755)
}

// alignCPUs renders a live cpus value as the last-applied one when both
// come down to the same CFS quota: cpus: 0.333333 is stored as quota
// 33333 and would otherwise read back as 0.33333, a drift that is not one.
func alignCPUs(live map[string]json.RawMessage, appliedSpec json.RawMessage) {
	lv, ok := live["cpus"]
	if !ok || len(appliedSpec) == 0 {
		return
	}
	var spec struct {
		CPUs *float64 `json:"cpus"`
	}
	var got float64
	if json.Unmarshal(appliedSpec, &spec) != nil || spec.CPUs == nil || json.Unmarshal(lv, &got) != nil {
		return
	}
	if cpuQuota(*spec.CPUs) == cpuQuota(got) {
		if b, err := json.Marshal(*spec.CPUs); err == nil {
			live["cpus"] = b
		}
	}
}
