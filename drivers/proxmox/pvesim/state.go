package pvesim

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

type node struct {
	name string
	cpus int
	mem  int64
	ip   string
}

type storageDef struct {
	id      string
	typ     string // dir | lvmthin
	content []string
	total   int64
}

func (d *storageDef) supports(content string) bool {
	for _, c := range d.content {
		if c == content {
			return true
		}
	}
	return false
}

type volume struct {
	volid   string
	content string // vztmpl | iso | images | rootdir | import
	format  string
	size    int64
	vmid    int
	ctime   int64
}

// guest is one QEMU VM or LXC container: its config file (current values,
// [PENDING] section) plus runtime state.
type guest struct {
	vmid       int
	node       string
	kind       string // "qemu" | "lxc"
	conf       map[string]string
	pending    map[string]string
	pendingDel []string
	status     string // stopped | running | paused
	startedAt  time.Time
	rrd        *rrdSample
	// ignoreShutdown makes the guest ignore ACPI shutdown / lxc-stop
	// requests, so shutdown runs into its timeout.
	ignoreShutdown bool
}

type rrdSample struct {
	name   string
	status string
	mem    int64
}

// Proxmox's OUI for generated MAC addresses (pve-cluster DataCenterConfig.pm).
const macPrefix = "BC:24:11"

func (s *Sim) seed() {
	for i, name := range s.opts.NodeNames {
		s.nodes = append(s.nodes, &node{name: name, cpus: s.opts.NodeCPUs, mem: s.opts.NodeMemory, ip: fmt.Sprintf("192.0.2.%d", 10+i)})
	}
	s.storages = []*storageDef{
		{id: "local", typ: "dir", content: []string{"iso", "vztmpl", "import"}, total: 100 << 30},
		{id: "local-lvm", typ: "lvmthin", content: []string{"images", "rootdir"}, total: 500 << 30},
	}
	now := time.Now().Unix()
	for _, n := range s.nodes {
		s.volumes[n.name] = map[string]*volume{}
		if s.opts.NoSeed {
			continue
		}
		for _, v := range []*volume{
			{volid: "local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst", content: "vztmpl", format: "tzst", size: 123 << 20},
			{volid: "local:vztmpl/alpine-3.22-default_20250617_amd64.tar.xz", content: "vztmpl", format: "txz", size: 3 << 20},
			{volid: "local:iso/debian-13.1.0-amd64-netinst.iso", content: "iso", format: "iso", size: 754 << 20},
			{volid: "local:import/debian-13-genericcloud-amd64.qcow2", content: "import", format: "qcow2", size: 3 << 30},
		} {
			v.ctime = now
			s.volumes[n.name][v.volid] = v
		}
	}
	if s.opts.NoSeed {
		return
	}
	// The cloud-init QEMU template most Proxmox guides build: VM 9000.
	first := s.nodes[0].name
	g := &guest{vmid: 9000, node: first, kind: "qemu", status: "stopped", conf: map[string]string{
		"name": "debian13-cloud", "template": "1", "memory": "2048", "cores": "2",
		"scsihw": "virtio-scsi-single", "scsi0": "local-lvm:base-9000-disk-0,size=3G",
		"ide2": "local-lvm:vm-9000-cloudinit,media=cdrom", "boot": "order=scsi0",
		"net0": "virtio=" + macPrefix + ":90:00:01,bridge=vmbr0", "agent": "enabled=1",
		"serial0": "socket", "vga": "serial0", "ostype": "l26", "ipconfig0": "ip=dhcp",
		"smbios1": "uuid=" + randomUUID(), "vmgenid": randomUUID(),
		"meta": fmt.Sprintf("creation-qemu=10.0.2,ctime=%d", now),
	}}
	s.guests[g.vmid] = g
	s.addVolume(first, "local-lvm:base-9000-disk-0", "images", 3<<30, 9000)
	s.addVolume(first, "local-lvm:vm-9000-cloudinit", "images", 4<<20, 9000)
}

func (s *Sim) addVolume(nodeName, volid, content string, size int64, vmid int) {
	format := "raw"
	s.volumes[nodeName][volid] = &volume{volid: volid, content: content, format: format, size: size, vmid: vmid, ctime: time.Now().Unix()}
}

func (s *Sim) storage(id string) *storageDef {
	for _, d := range s.storages {
		if d.id == id {
			return d
		}
	}
	return nil
}

func (g *guest) typeName() string {
	if g.kind == "lxc" {
		return "CT"
	}
	return "VM"
}

func confPath(nodeName, kind string, vmid int) string {
	dir := "qemu-server"
	if kind == "lxc" {
		dir = "lxc"
	}
	return fmt.Sprintf("nodes/%s/%s/%d.conf", nodeName, dir, vmid)
}

// loadGuest finds the guest behind {node}/{kind}/{vmid} the way PVE reads
// its config file from /etc/pve/nodes/<node>/...
func (s *Sim) loadGuest(r *reqCtx, kind string) (*guest, error) {
	vmid := r.int("vmid", 0)
	g := s.guests[vmid]
	if g == nil || g.node != r.node || g.kind != kind {
		return nil, errf(500, "Configuration file '%s' does not exist", confPath(r.node, kind, vmid))
	}
	return g, nil
}

// loadUnlocked is loadGuest then checkLock: how the handlers that act on a
// guest (power, delete, template) start.
func (s *Sim) loadUnlocked(r *reqCtx, kind string) (*guest, error) {
	g, err := s.loadGuest(r, kind)
	if err != nil {
		return nil, err
	}
	if err := g.checkLock(r); err != nil {
		return nil, err
	}
	return g, nil
}

// checkDigest refuses a change made against an older config than the
// current one (the request's digest parameter), in each kind's words.
func (g *guest) checkDigest(r *reqCtx) error {
	if d := r.str("digest"); d == "" || d == g.digest() {
		return nil
	}
	if g.kind == "qemu" {
		return errf(500, "checksum mismatch (file change by other user?)")
	}
	return errf(500, "detected modified configuration - file changed by other user? Try again.")
}

// checkLock is AbstractConfig check_lock: "VM is locked (create)".
func (g *guest) checkLock(r *reqCtx) error {
	if l := g.conf["lock"]; l != "" && !r.flag("skiplock") {
		return errf(500, "%s is locked (%s)", g.typeName(), l)
	}
	return nil
}

func (g *guest) isTemplate() bool { return g.conf["template"] == "1" }

func (g *guest) name() string {
	if g.kind == "lxc" {
		if h := g.conf["hostname"]; h != "" {
			return h
		}
		return fmt.Sprintf("CT%d", g.vmid)
	}
	if n := g.conf["name"]; n != "" {
		return n
	}
	return fmt.Sprintf("VM %d", g.vmid)
}

// encodeComment is PVE::Tools encode_text for '#' comment lines.
func encodeComment(line string) string {
	var b strings.Builder
	for _, r := range line {
		if r == ':' || r == '%' || r < 0x20 || r == 0x7f {
			fmt.Fprintf(&b, "%%%02X", r)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// configText renders the guest's config file as pmxcfs would store it;
// its SHA-1 is the digest.
func (g *guest) configText() string {
	var b strings.Builder
	writeSection := func(conf map[string]string) {
		if d, ok := conf["description"]; ok {
			for _, line := range strings.Split(strings.TrimRight(d, "\n"), "\n") {
				b.WriteString("#" + encodeComment(line) + "\n")
			}
		}
		keys := make([]string, 0, len(conf))
		for k := range conf {
			if k != "description" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteString(k + ": " + conf[k] + "\n")
		}
	}
	writeSection(g.conf)
	if len(g.pending) > 0 || len(g.pendingDel) > 0 {
		b.WriteString("\n[PENDING]\n")
		writeSection(g.pending)
		if len(g.pendingDel) > 0 {
			b.WriteString("delete: " + strings.Join(g.pendingDel, ",") + "\n")
		}
	}
	return b.String()
}

func (g *guest) digest() string {
	sum := sha1.Sum([]byte(g.configText()))
	return hex.EncodeToString(sum[:])
}

// typedValue converts a config-file string to the JSON type PVE's config
// GET returns: integer -> number, boolean -> 1/0 number, number (cpulimit)
// -> string, strings and property strings -> string.
func typedValue(ep *Endpoint, key, v string) any {
	p := ep.Lookup(key)
	if p == nil {
		return v
	}
	switch p.Type {
	case "integer", "boolean":
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return v
}

func configEndpoint(kind string) *Endpoint {
	for _, ep := range APISchema().Endpoints {
		if ep.Method == "PUT" && ep.Path == "/nodes/{node}/"+kind+"/{vmid}/config" {
			return ep
		}
	}
	panic("pvesim: schema lacks PUT config for " + kind)
}

// descriptionOut is how config GET returns a description: QEMU strips
// trailing whitespace; LXC returns every comment line plus "\n".
func (g *guest) descriptionOut(d string) string {
	if g.kind == "qemu" {
		return strings.TrimRight(d, " \t\r\n")
	}
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(d, "\n"), "\n") {
		b.WriteString(line + "\n")
	}
	return b.String()
}

func (g *guest) configOut(current bool) map[string]any {
	ep := configEndpoint(g.kind)
	out := map[string]any{}
	merged := map[string]string{}
	for k, v := range g.conf {
		merged[k] = v
	}
	if !current {
		for k, v := range g.pending {
			merged[k] = v
		}
		for _, k := range g.pendingDel {
			delete(merged, k)
		}
	}
	for k, v := range merged {
		switch k {
		case "description":
			out[k] = g.descriptionOut(v)
		case "cipassword":
			out[k] = "**********"
		default:
			out[k] = typedValue(ep, k, v)
		}
	}
	out["digest"] = g.digest()
	return out
}

// normalizeTags is GuestHelpers get_unique_tags: split on [,; ], dedupe,
// sort case-insensitively, join with ';'.
func normalizeTags(s string) string {
	seen := map[string]bool{}
	var tags []string
	for _, t := range splitList(s) {
		t = strings.ToLower(t)
		if !seen[t] {
			seen[t] = true
			tags = append(tags, t)
		}
	}
	sort.Slice(tags, func(i, j int) bool { return strings.ToLower(tags[i]) < strings.ToLower(tags[j]) })
	return strings.Join(tags, ";")
}

// nextMAC hands out addresses under Proxmox's OUI.
func (s *Sim) nextMAC(vmid int) string {
	s.macSeq++
	return fmt.Sprintf("%s:%02X:%02X:%02X", macPrefix, (vmid>>8)&0xff, vmid&0xff, s.macSeq&0xff)
}

// guestIP is the address the simulated DHCP server hands a guest: stable
// per vmid and interface index.
func guestIP(vmid, idx int) string {
	return fmt.Sprintf("10.%d.%d.%d", 10+idx, (vmid/250)%250, vmid%250+2)
}

// parseSize parses PVE disk sizes ("32", "32G", "512M", "1.5T") to bytes;
// a bare number means GiB.
func parseSize(s string) (int64, bool) {
	m := diskSizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	mult := float64(1 << 30)
	switch m[3] {
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "T":
		mult = 1 << 40
	}
	return int64(f * mult), true
}

// formatSize is PVE::JSONSchema format_size: the largest unit that divides.
func formatSize(b int64) string {
	switch {
	case b%(1<<40) == 0:
		return fmt.Sprintf("%dT", b>>40)
	case b%(1<<30) == 0:
		return fmt.Sprintf("%dG", b>>30)
	case b%(1<<20) == 0:
		return fmt.Sprintf("%dM", b>>20)
	case b%(1<<10) == 0:
		return fmt.Sprintf("%dK", b>>10)
	}
	return strconv.FormatInt(b, 10)
}

// printPropertyString renders parsed keys: the default key (value only)
// first, then required keys, then the rest sorted.
func printPropertyString(format map[string]*Param, kv map[string]string) string {
	var first, req, rest []string
	for k := range kv {
		p := format[k]
		switch {
		case p != nil && p.DefaultKey:
			first = append(first, kv[k])
		case p != nil && !p.Optional:
			req = append(req, k)
		default:
			rest = append(rest, k)
		}
	}
	sort.Strings(req)
	sort.Strings(rest)
	parts := first
	for _, k := range append(req, rest...) {
		parts = append(parts, k+"="+kv[k])
	}
	return strings.Join(parts, ",")
}
