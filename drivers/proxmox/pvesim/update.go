package pvesim

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Parameters of the config update calls that are not config keys.
var updateControl = map[string]bool{
	"node": true, "vmid": true, "digest": true, "delete": true, "revert": true,
	"skiplock": true, "force": true, "background_delay": true,
}

// Options a running QEMU VM takes at once ("fast plug"), per qemu-server
// vmconfig_hotplug_pending / $fast_plug_option, plus the cloud-init keys.
var qemuFastPlug = map[string]bool{
	"name": true, "description": true, "tags": true, "onboot": true, "protection": true,
	"startup": true, "hookscript": true, "lock": true, "migrate_downtime": true,
	"migrate_speed": true, "shares": true, "vmstatestorage": true, "ciuser": true,
	"cipassword": true, "citype": true, "ciupgrade": true, "cicustom": true,
	"nameserver": true, "searchdomain": true, "sshkeys": true, "cpulimit": true,
	"cpuunits": true, "balloon": true,
}

// Options a running container takes at once (pve-container
// vmconfig_hotplug_pending): fast-plug and hot-pluggable keys.
var lxcLive = map[string]bool{
	"description": true, "onboot": true, "startup": true, "protection": true, "hostname": true,
	"hookscript": true, "cores": true, "tags": true, "lock": true, "cpulimit": true,
	"cpuunits": true, "memory": true, "swap": true,
}

// liveChange reports whether a change to key applies immediately on a
// running guest (else it goes to [PENDING] until the next start).
func (g *guest) liveChange(key string) bool {
	if g.kind == "lxc" {
		if lxcLive[key] || (strings.HasPrefix(key, "net") && isDigits(key[3:])) {
			return true
		}
		// New mount points are hotplugged; changing an existing one is not.
		if strings.HasPrefix(key, "mp") && isDigits(key[2:]) {
			_, exists := g.conf[key]
			return !exists
		}
		return false
	}
	if qemuFastPlug[key] || strings.HasPrefix(key, "ipconfig") {
		return true
	}
	hp := g.conf["hotplug"]
	if hp == "" {
		hp = "network,disk,usb"
	}
	feature := map[string]bool{}
	for _, f := range splitList(hp) {
		feature[f] = true
	}
	if hp == "1" {
		feature = map[string]bool{"network": true, "disk": true, "usb": true}
	}
	switch {
	case strings.HasPrefix(key, "net") && isDigits(key[3:]):
		return feature["network"]
	case isDiskKey("qemu", key) || strings.HasPrefix(key, "unused"):
		return feature["disk"]
	case strings.HasPrefix(key, "usb") && isDigits(key[3:]):
		return feature["usb"]
	case key == "memory":
		return feature["memory"]
	case key == "vcpus":
		return feature["cpu"]
	}
	return false
}

// updateConfig implements PUT (and QEMU POST) config: validation that
// happens before the lock, digest and lock checks, then pending/hotplug
// handling. It returns the keys that went to [PENDING].
func (s *Sim) updateConfig(r *reqCtx, kind string) (*guest, error) {
	g, err := s.loadGuest(r, kind)
	if err != nil {
		return nil, err
	}
	set := map[string]string{}
	for k, v := range r.params {
		if !updateControl[k] {
			set[k] = v
		}
	}
	dels := splitList(r.str("delete"))
	reverts := splitList(r.str("revert"))
	if len(set) == 0 && len(dels) == 0 && len(reverts) == 0 {
		return nil, errf(500, "no options specified")
	}
	for _, k := range dels {
		if r.ep.Lookup(k) == nil && !strings.HasPrefix(k, "unused") {
			return nil, paramErr("delete", fmt.Sprintf("unknown option '%s'", k))
		}
		if _, both := set[k]; both {
			return nil, paramErr("delete", fmt.Sprintf("you can't use '-%s' and -delete %s' at the same time", k, k))
		}
	}
	if err := g.checkDigest(r); err != nil {
		return nil, err
	}
	if err := g.checkLock(r); err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		v := set[k]
		switch {
		case k == "tags":
			v = normalizeTags(v)
		case k == "cipassword":
			v = cryptPassword(v)
		case strings.HasPrefix(k, "net") && isDigits(k[3:]):
			if kind == "qemu" {
				v = s.expandQemuNet(r.ep.Lookup(k), keepMAC(g, k, v), g.vmid)
			} else {
				v = s.expandLXCNet(r.ep.Lookup(k), v, g.vmid)
			}
		case isDiskKey(kind, k):
			if kind == "qemu" {
				nv, allocs, err := s.allocQemuDisk(g.node, r.ep.Lookup(k), k, v, g.vmid, nil)
				if err != nil {
					return nil, err
				}
				for _, a := range allocs {
					s.addVolume(g.node, a.volid, "images", a.size, g.vmid)
				}
				v = nv
			} else {
				nv, allocs, err := s.allocLXCVolume(g.node, r.ep.Lookup(k), k, v, g.vmid, "local", nil)
				if err != nil {
					return nil, err
				}
				for _, a := range allocs {
					s.addVolume(g.node, a.volid, "rootdir", a.size, g.vmid)
				}
				v = nv
			}
		}
		if g.status != "stopped" && !g.liveChange(k) {
			if g.pending == nil {
				g.pending = map[string]string{}
			}
			g.pending[k] = v
			g.pendingDel = remove(g.pendingDel, k)
			continue
		}
		// A disk replaced by another volume becomes unusedN.
		if old, ok := g.conf[k]; ok && isDiskKey(kind, k) {
			ov, _ := volumeOf(old)
			nv, _ := volumeOf(v)
			if ov != nv && s.volumes[g.node][ov] != nil {
				g.conf[g.nextUnused()] = ov
			}
		}
		g.conf[k] = v
		delete(g.pending, k)
		g.pendingDel = remove(g.pendingDel, k)
	}
	for _, k := range dels {
		_, inConf := g.conf[k]
		_, inPending := g.pending[k]
		if !inConf && !inPending {
			continue // PVE only warns
		}
		delete(g.pending, k)
		if !inConf {
			continue
		}
		if g.status != "stopped" && !g.liveChange(k) {
			if !slices.Contains(g.pendingDel, k) {
				g.pendingDel = append(g.pendingDel, k)
			}
			continue
		}
		if isDiskKey(kind, k) {
			if vol, _ := volumeOf(g.conf[k]); s.volumes[g.node][vol] != nil {
				g.conf[g.nextUnused()] = vol
			}
		}
		if strings.HasPrefix(k, "unused") {
			if vol, _ := volumeOf(g.conf[k]); vol != "" {
				delete(s.volumes[g.node], vol)
			}
		}
		delete(g.conf, k)
	}
	for _, k := range reverts {
		delete(g.pending, k)
		g.pendingDel = remove(g.pendingDel, k)
	}
	if len(g.pending) == 0 {
		g.pending = nil
	}
	return g, nil
}

// keepMAC carries the existing MAC over when a NIC is redefined without
// one, as qemu-server does for an unchanged model.
func keepMAC(g *guest, key, v string) string {
	old, ok := g.conf[key]
	if !ok {
		return v
	}
	first, rest, _ := strings.Cut(v, ",")
	if strings.Contains(first, "=") {
		return v
	}
	oldModel, mac, ok := strings.Cut(strings.SplitN(old, ",", 2)[0], "=")
	if !ok || oldModel != first {
		return v
	}
	out := first + "=" + mac
	if rest != "" {
		out += "," + rest
	}
	return out
}

func (g *guest) nextUnused() string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("unused%d", i)
		if _, ok := g.conf[k]; !ok {
			return k
		}
	}
}

func remove(list []string, k string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != k {
			out = append(out, x)
		}
	}
	return out
}

// PUT /nodes/{node}/{kind}/{vmid}/config: synchronous, returns null.
func putConfig(kind string) handlerFunc {
	return func(s *Sim, r *reqCtx) (any, error) {
		_, err := s.updateConfig(r, kind)
		return nil, err
	}
}

// POST /nodes/{node}/qemu/{vmid}/config: the same checks synchronously,
// then a qmconfig task (hotplug work happens there on real PVE).
func hQemuPostConfig(s *Sim, r *reqCtx) (any, error) {
	g, err := s.updateConfig(r, "qemu")
	if err != nil {
		return nil, err
	}
	return s.spawn(r.node, "qmconfig", g.vmid, r.taskUser(), func(t *task) error {
		for k := range g.pending {
			t.logf("%s: pending until next restart", k)
		}
		return nil
	}, nil), nil
}
