package pvesim

import (
	"fmt"
	"strings"
)

// POST /nodes/{node}/{kind}/{vmid}/clone: full or linked (templates only)
// clone with its own lock and task (qmclone / vzclone; the task id is the
// source vmid).
func cloneGuest(kind string) handlerFunc {
	return func(s *Sim, r *reqCtx) (any, error) {
		src, err := s.loadGuest(r, kind)
		if err != nil {
			return nil, err
		}
		newid := r.int("newid", 0)
		if o := s.guests[newid]; o != nil {
			return nil, errf(500, "%s %d already exists on node '%s'", o.typeName(), newid, o.node)
		}
		if err := src.checkLock(r); err != nil {
			return nil, err
		}
		full := !src.isTemplate()
		if r.has("full") {
			full = r.flag("full")
		}
		if !full && !src.isTemplate() {
			first := ""
			if keys := src.diskKeys(); len(keys) > 0 {
				first = keys[0]
			}
			return nil, errf(500, "Linked clone feature is not supported for drive '%s'", first)
		}
		if !full && r.has("storage") {
			return nil, paramErr("storage", "parameter 'storage' not allowed for linked clones")
		}
		target := r.node
		if r.has("target") {
			target = r.str("target")
			if s.findNode(target) == nil {
				return nil, errf(500, "no such cluster node '%s'", target)
			}
			if target != r.node {
				return nil, errf(500, "Can't clone to node '%s' - storage 'local-lvm' is not shared", target)
			}
		}
		storage := r.str("storage")
		if storage != "" {
			sd := s.storage(storage)
			if sd == nil {
				return nil, errf(500, "storage '%s' does not exist", storage)
			}
			if !sd.supports(map[string]string{"qemu": "images", "lxc": "rootdir"}[kind]) {
				return nil, errf(500, "storage '%s' does not support %s", storage, map[string]string{"qemu": "vm images", "lxc": "container directories"}[kind])
			}
		}
		conf := map[string]string{}
		for k, v := range src.conf {
			switch {
			case k == "template" || k == "lock" || strings.HasPrefix(k, "unused") || k == "parent":
			default:
				conf[k] = v
			}
		}
		if kind == "qemu" {
			if r.has("name") {
				conf["name"] = r.str("name")
			} else {
				conf["name"] = "Copy-of-VM-" + src.name()
			}
			conf["smbios1"] = "uuid=" + randomUUID()
			conf["vmgenid"] = randomUUID()
		} else if r.has("hostname") {
			conf["hostname"] = r.str("hostname")
		}
		if r.has("description") {
			conf["description"] = r.str("description")
		}
		for k, v := range conf {
			if strings.HasPrefix(k, "net") && isDigits(k[3:]) {
				conf[k] = s.newMACFor(kind, v, newid)
			}
		}
		var allocs []alloc
		for _, k := range src.diskKeys() {
			vol, size := volumeOf(src.conf[k])
			if s.volumes[src.node][volKey(vol)] == nil {
				continue // cdrom, none, bind mounts
			}
			st := strings.SplitN(vol, ":", 2)[0]
			var nv string
			if strings.HasSuffix(vol, "-cloudinit") {
				nv = fmt.Sprintf("%s:vm-%d-cloudinit", st, newid)
			} else {
				if full && storage != "" {
					st = storage
				}
				// Only the clone's own new disks count (not the node's
				// live volumes), as before.
				nv = freeDiskVolid(st, newid, nil, allocs)
			}
			name := nv
			if !full && !strings.HasSuffix(vol, "-cloudinit") {
				// linked clone: <storage>:base-9000-disk-0/vm-101-disk-0
				name = vol + "/" + strings.SplitN(nv, ":", 2)[1]
				if strings.Contains(vol, "/") { // clone of a linked clone: same base
					name = strings.SplitN(vol, "/", 2)[0] + "/" + strings.SplitN(nv, ":", 2)[1]
				}
			}
			allocs = append(allocs, alloc{volid: nv, size: size})
			conf[k] = strings.Replace(src.conf[k], vol, name, 1)
		}
		ng := &guest{vmid: newid, node: target, kind: kind, status: "stopped", conf: map[string]string{"lock": "clone"}}
		s.guests[newid] = ng
		if !src.isTemplate() {
			src.conf["lock"] = "clone"
		}
		typ := "qmclone"
		if kind == "lxc" {
			typ = "vzclone"
		}
		content := map[string]string{"qemu": "images", "lxc": "rootdir"}[kind]
		return s.spawn(r.node, typ, src.vmid, r.taskUser(), func(t *task) error {
			for _, a := range allocs {
				s.addVolume(target, a.volid, content, a.size, newid)
				if full {
					t.logf("create full clone of drive (%s)", a.volid)
				} else {
					t.logf("create linked clone of drive (%s)", a.volid)
				}
			}
			ng.conf = conf
			if !src.isTemplate() {
				delete(src.conf, "lock")
			}
			return nil
		}, func() {
			delete(s.guests, newid)
			if !src.isTemplate() {
				delete(src.conf, "lock")
			}
		}), nil
	}
}

// newMACFor gives a cloned NIC a fresh MAC address.
func (s *Sim) newMACFor(kind, v string, vmid int) string {
	parts := strings.Split(v, ",")
	for i, p := range parts {
		k, _, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		if kind == "lxc" && k == "hwaddr" {
			parts[i] = "hwaddr=" + s.nextMAC(vmid)
		}
		if kind == "qemu" && i == 0 {
			parts[i] = k + "=" + s.nextMAC(vmid)
		}
	}
	return strings.Join(parts, ",")
}

// PUT /nodes/{node}/{kind}/{vmid}/resize: grow a disk ("+2G" or "40G");
// returns a task (qmresize / resize).
func resizeDisk(kind string) handlerFunc {
	return func(s *Sim, r *reqCtx) (any, error) {
		g, err := s.loadGuest(r, kind)
		if err != nil {
			return nil, err
		}
		if err := g.checkDigest(r); err != nil {
			return nil, err
		}
		if err := g.checkLock(r); err != nil {
			return nil, err
		}
		disk := r.str("disk")
		val, ok := g.conf[disk]
		if !ok {
			return nil, errf(500, "disk '%s' does not exist", disk)
		}
		vol, cur := volumeOf(val)
		if strings.Contains(val, "media=cdrom") {
			return nil, errf(500, "you can't resize a cdrom")
		}
		spec := r.str("size")
		grow := strings.HasPrefix(spec, "+")
		n, ok := parseSize(strings.TrimPrefix(spec, "+"))
		if !ok {
			return nil, paramErr("size", "value does not match the regex pattern")
		}
		newSize := n
		if grow {
			newSize = cur + n
		}
		if newSize < cur {
			return nil, errf(500, "shrinking disks is not supported")
		}
		typ := "qmresize"
		if kind == "lxc" {
			typ = "resize"
		}
		return s.spawn(r.node, typ, g.vmid, r.taskUser(), func(t *task) error {
			if newSize == cur {
				return nil
			}
			g.conf[disk] = replaceSize(val, newSize)
			if v := s.volumes[g.node][volKey(vol)]; v != nil {
				v.size = newSize
			}
			t.logf("  Size of logical volume %s changed from %s to %s.", strings.SplitN(volKey(vol), ":", 2)[1], formatSize(cur), formatSize(newSize))
			return nil
		}, nil), nil
	}
}

func replaceSize(val string, size int64) string {
	parts := strings.Split(val, ",")
	found := false
	for i, p := range parts {
		if strings.HasPrefix(p, "size=") {
			parts[i] = "size=" + formatSize(size)
			found = true
		}
	}
	if !found {
		parts = append(parts, "size="+formatSize(size))
	}
	return strings.Join(parts, ",")
}

// POST /nodes/{node}/{kind}/{vmid}/template: convert to a template,
// renaming disks to base-<vmid>-disk-N. QEMU answers with a task, LXC
// with null.
func makeTemplate(kind string) handlerFunc {
	return func(s *Sim, r *reqCtx) (any, error) {
		g, err := s.loadUnlocked(r, kind)
		if err != nil {
			return nil, err
		}
		if g.isTemplate() {
			return nil, errf(500, "you can't convert a template to a template")
		}
		if g.status != "stopped" {
			if kind == "lxc" {
				return nil, errf(500, "you can't convert a CT to template if the CT is running")
			}
			return nil, errf(500, "you can't convert a VM to template if VM is running")
		}
		convert := func() {
			for _, k := range g.diskKeys() {
				vol, _ := volumeOf(g.conf[k])
				v := s.volumes[g.node][vol]
				if v == nil || strings.HasSuffix(vol, "-cloudinit") {
					continue
				}
				nv := strings.Replace(vol, fmt.Sprintf(":vm-%d-", g.vmid), fmt.Sprintf(":base-%d-", g.vmid), 1)
				delete(s.volumes[g.node], vol)
				v.volid = nv
				s.volumes[g.node][nv] = v
				g.conf[k] = strings.Replace(g.conf[k], vol, nv, 1)
			}
			g.conf["template"] = "1"
		}
		if kind == "lxc" {
			convert()
			return nil, nil
		}
		g.conf["lock"] = "template"
		return s.spawn(r.node, "qmtemplate", g.vmid, r.taskUser(), func(t *task) error {
			delete(g.conf, "lock")
			convert()
			return nil
		}, func() { delete(g.conf, "lock") }), nil
	}
}
