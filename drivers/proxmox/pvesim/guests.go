package pvesim

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kind-independent guest endpoints: list, index, config GET, pending,
// status/current, and the helpers both create paths share.

func (s *Sim) guestSummary(g *guest) map[string]any {
	d := map[string]any{
		"vmid": g.vmid, "name": g.name(), "status": g.status, "uptime": g.uptime(),
		"maxmem": g.maxMem(), "maxdisk": s.maxDisk(g), "cpus": g.cpus(s),
		"mem": g.memUsed(), "disk": 0, "cpu": g.cpuUsage(),
		"netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0,
	}
	if g.kind == "lxc" {
		d["type"] = "lxc"
		d["maxswap"] = g.confInt("swap", 512) << 20
	} else {
		if g.status == "running" {
			d["pid"] = 100000 + g.vmid
		}
	}
	if t := g.conf["tags"]; t != "" {
		d["tags"] = t
	}
	if l := g.conf["lock"]; l != "" {
		d["lock"] = l
	}
	if g.isTemplate() {
		d["template"] = 1
	}
	return d
}

func (g *guest) uptime() int64 {
	if g.status == "stopped" {
		return 0
	}
	return int64(time.Since(g.startedAt).Seconds())
}

func (g *guest) confInt(k string, def int64) int64 {
	if v, ok := g.conf[k]; ok {
		// QEMU memory is a property string: "current=2048" or "2048".
		v = strings.TrimPrefix(v, "current=")
		if i := strings.IndexByte(v, ','); i >= 0 {
			v = v[:i]
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return def
}

// maxMem is the configured memory (both kinds default to 512 MiB).
func (g *guest) maxMem() int64 { return g.confInt("memory", 512) << 20 }

func (g *guest) memUsed() int64 {
	if g.status == "stopped" {
		return 0
	}
	return g.maxMem() / 4
}

func (g *guest) cpuUsage() float64 {
	if g.status == "stopped" {
		return 0
	}
	return 0.01
}

func (g *guest) cpus(s *Sim) int64 {
	if g.kind == "lxc" {
		if n := g.confInt("cores", 0); n > 0 {
			return n
		}
		if nd := s.findNode(g.node); nd != nil {
			return int64(nd.cpus)
		}
		return 1
	}
	return g.confInt("cores", 1) * g.confInt("sockets", 1)
}

// diskKeys lists the guest's disk options (rootfs/mpN or QEMU drives).
func (g *guest) diskKeys() []string {
	var keys []string
	for k := range g.conf {
		if isDiskKey(g.kind, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func isDiskKey(kind, k string) bool {
	if kind == "lxc" {
		return k == "rootfs" || (strings.HasPrefix(k, "mp") && isDigits(k[2:]))
	}
	for _, p := range []string{"scsi", "virtio", "sata", "ide"} {
		if strings.HasPrefix(k, p) && isDigits(k[len(p):]) {
			return true
		}
	}
	return k == "efidisk0" || k == "tpmstate0"
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// volumeOf splits a disk option value into its volume and the size
// option ("local-lvm:vm-100-disk-0,size=8G").
func volumeOf(v string) (vol string, size int64) {
	parts := strings.Split(v, ",")
	vol = parts[0]
	if strings.HasPrefix(vol, "volume=") || strings.HasPrefix(vol, "file=") {
		vol = vol[strings.IndexByte(vol, '=')+1:]
	}
	for _, p := range parts[1:] {
		if sz, ok := strings.CutPrefix(p, "size="); ok {
			size, _ = parseSize(sz)
		}
	}
	return vol, size
}

// volKey is the storage-level name of a config volume: a linked clone's
// "local-lvm:base-9000-disk-0/vm-120-disk-0" is the volume
// "local-lvm:vm-120-disk-0".
func volKey(vol string) string {
	st, name, ok := strings.Cut(vol, ":")
	if !ok {
		return vol
	}
	if i := strings.LastIndexByte(name, '/'); i >= 0 && strings.HasPrefix(name, "base-") {
		return st + ":" + name[i+1:]
	}
	return vol
}

func (s *Sim) maxDisk(g *guest) int64 {
	key := "rootfs"
	if g.kind == "qemu" {
		key = ""
		for _, k := range g.diskKeys() {
			if !strings.Contains(g.conf[k], "media=cdrom") {
				key = k
				break
			}
		}
	}
	if key == "" {
		return 0
	}
	_, size := volumeOf(g.conf[key])
	return size
}

// GET /nodes/{node}/{qemu|lxc}
func listGuests(kind string) handlerFunc {
	return func(s *Sim, r *reqCtx) (any, error) {
		out := []map[string]any{}
		if !r.canAudit() {
			return out, nil
		}
		ids := s.sortedIDs()
		for _, id := range ids {
			g := s.guests[id]
			if g.node != r.node || g.kind != kind {
				continue
			}
			out = append(out, s.guestSummary(g))
		}
		return out, nil
	}
}

func (s *Sim) sortedIDs() []int {
	ids := make([]int, 0, len(s.guests))
	for id := range s.guests {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

// GET /nodes/{node}/{kind}/{vmid}: directory index.
func guestIndex(kind string) handlerFunc {
	return func(s *Sim, r *reqCtx) (any, error) {
		if _, err := s.loadGuest(r, kind); err != nil {
			return nil, err
		}
		names := []string{"config", "pending", "status", "clone", "resize", "template"}
		if kind == "lxc" {
			names = append(names, "interfaces")
		} else {
			names = append(names, "agent")
		}
		out := []map[string]any{}
		for _, n := range names {
			out = append(out, map[string]any{"subdir": n})
		}
		return out, nil
	}
}

// GET /nodes/{node}/{kind}/{vmid}/status: directory index.
func statusIndex(kind string) handlerFunc {
	return func(s *Sim, r *reqCtx) (any, error) {
		if _, err := s.loadGuest(r, kind); err != nil {
			return nil, err
		}
		out := []map[string]any{}
		for _, n := range []string{"current", "start", "stop", "shutdown", "reboot"} {
			out = append(out, map[string]any{"subdir": n})
		}
		return out, nil
	}
}

// GET /nodes/{node}/{kind}/{vmid}/config
func getConfig(kind string) handlerFunc {
	return func(s *Sim, r *reqCtx) (any, error) {
		g, err := s.loadGuest(r, kind)
		if err != nil {
			return nil, err
		}
		if r.has("snapshot") {
			return nil, errf(500, "snapshot '%s' does not exist", r.str("snapshot"))
		}
		return g.configOut(r.flag("current")), nil
	}
}

// GET /nodes/{node}/{kind}/{vmid}/pending
func getPending(kind string) handlerFunc {
	return func(s *Sim, r *reqCtx) (any, error) {
		g, err := s.loadGuest(r, kind)
		if err != nil {
			return nil, err
		}
		ep := configEndpoint(kind)
		keys := map[string]bool{}
		for k := range g.conf {
			keys[k] = true
		}
		for k := range g.pending {
			keys[k] = true
		}
		del := map[string]bool{}
		for _, k := range g.pendingDel {
			keys[k] = true
			del[k] = true
		}
		out := []map[string]any{}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			e := map[string]any{"key": k}
			conv := func(v string) any {
				if k == "description" {
					return g.descriptionOut(v)
				}
				return typedValue(ep, k, v)
			}
			if v, ok := g.conf[k]; ok {
				e["value"] = conv(v)
			}
			if v, ok := g.pending[k]; ok {
				e["pending"] = conv(v)
			}
			if del[k] {
				e["delete"] = 1
			}
			out = append(out, e)
		}
		return out, nil
	}
}

// GET /nodes/{node}/{kind}/{vmid}/status/current
func statusCurrent(kind string) handlerFunc {
	return func(s *Sim, r *reqCtx) (any, error) {
		g, err := s.loadGuest(r, kind)
		if err != nil {
			return nil, err
		}
		d := s.guestSummary(g)
		d["ha"] = map[string]any{"managed": 0}
		if kind == "qemu" {
			d["qmpstatus"] = g.status
			if g.status == "running" || g.status == "paused" {
				d["running-qemu"] = "10.0.2"
				d["running-machine"] = "pc-i440fx-10.0+pve0"
			}
			if a := g.conf["agent"]; a != "" && agentEnabled(a) {
				d["agent"] = 1
			}
			if g.status == "paused" {
				d["status"] = "running"
			}
		}
		return d, nil
	}
}

func agentEnabled(v string) bool {
	first := strings.Split(v, ",")[0]
	first = strings.TrimPrefix(first, "enabled=")
	b, _ := parseBoolean(first)
	return b
}

// removeGuestVolumes frees every volume owned by vmid on its node.
func (s *Sim) removeGuestVolumes(g *guest) {
	for volid, v := range s.volumes[g.node] {
		if v.vmid == g.vmid && (v.content == "images" || v.content == "rootdir") {
			delete(s.volumes[g.node], volid)
		}
	}
}

// alloc is a volume a create or clone task adds when it runs: the config
// key it backs, its volume id, its size and, for a qemu import-from, the
// source volume.
type alloc struct {
	key, volid, from string
	size             int64
}

// freeDiskVolid is the first "STORAGE:vm-VMID-disk-N" that is neither
// among live (a node's volumes; nil for none) nor already in allocs.
func freeDiskVolid(storage string, vmid int, live map[string]*volume, allocs []alloc) string {
	for n := 0; ; n++ {
		volid := fmt.Sprintf("%s:vm-%d-disk-%d", storage, vmid, n)
		taken := live[volid] != nil
		for _, a := range allocs {
			taken = taken || a.volid == volid
		}
		if !taken {
			return volid
		}
	}
}

// createConf is the config a create request writes: its parameters minus
// those that only steer the creation (createOnly).
func createConf(params map[string]string, createOnly map[string]bool) map[string]string {
	conf := map[string]string{}
	for k, v := range params {
		if !createOnly[k] {
			conf[k] = v
		}
	}
	return conf
}

// destroyGuest is what a destroy task (vzdestroy, qmdestroy) does once the
// guest is stopped: log and free its volumes, forget the guest and, with
// purge, log the clean-up of related configurations.
func (s *Sim) destroyGuest(g *guest, t *task, purge bool) {
	for _, k := range g.diskKeys() {
		vol, _ := volumeOf(g.conf[k])
		if _, ok := s.volumes[g.node][vol]; ok {
			t.logf("  Logical volume \"%s\" successfully removed.", strings.SplitN(vol, ":", 2)[1])
		}
	}
	s.removeGuestVolumes(g)
	delete(s.guests, g.vmid)
	if purge {
		t.logf("purging %s %d from related configurations..", g.typeName(), g.vmid)
	}
}
