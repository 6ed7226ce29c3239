package pvesim

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Parameters of POST /nodes/{node}/lxc that steer creation and are not
// written to the container config (pve-container API2/LXC.pm).
var lxcCreateOnly = map[string]bool{
	"node": true, "vmid": true, "ostemplate": true, "storage": true, "password": true,
	"ssh-public-keys": true, "start": true, "force": true, "restore": true, "unique": true,
	"pool": true, "bwlimit": true, "ignore-unpack-errors": true, "ha-managed": true,
}

// POST /nodes/{node}/lxc
func hLXCCreate(s *Sim, r *reqCtx) (any, error) {
	vmid := r.int("vmid", 0)
	if g := s.guests[vmid]; g != nil {
		// check_vmid_unused runs before create_and_lock_config: no prefix.
		return nil, errf(500, "%s %d already exists on node '%s'", g.typeName(), vmid, g.node)
	}
	tmpl := r.str("ostemplate")
	if s.volumes[r.node][tmpl] == nil {
		return nil, errf(500, "volume '%s' does not exist", tmpl)
	}
	ep := r.ep
	storage := r.str("storage")
	if storage == "" {
		storage = "local"
	}
	conf := createConf(r.params, lxcCreateOnly)
	rootfs := conf["rootfs"]
	if rootfs == "" {
		rootfs = storage + ":4"
	}
	var allocs []alloc
	var err error
	conf["rootfs"], allocs, err = s.allocLXCVolume(r.node, ep.Lookup("rootfs"), "rootfs", rootfs, vmid, storage, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range conf {
		if strings.HasPrefix(k, "mp") && isDigits(k[2:]) {
			conf[k], allocs, err = s.allocLXCVolume(r.node, ep.Lookup(k), k, v, vmid, storage, allocs)
			if err != nil {
				return nil, err
			}
		}
		if strings.HasPrefix(k, "net") && isDigits(k[3:]) {
			conf[k] = s.expandLXCNet(ep.Lookup(k), v, vmid)
		}
	}
	if t, ok := conf["tags"]; ok {
		conf["tags"] = normalizeTags(t)
	}
	setDefault := func(k, v string) {
		if _, ok := conf[k]; !ok {
			conf[k] = v
		}
	}
	setDefault("hostname", fmt.Sprintf("CT%d", vmid))
	setDefault("memory", "512")
	setDefault("swap", "512")
	setDefault("arch", "amd64")
	setDefault("ostype", detectOSType(tmpl))
	if _, ok := r.params["unprivileged"]; !ok {
		conf["unprivileged"] = "1"
	}
	g := &guest{vmid: vmid, node: r.node, kind: "lxc", status: "stopped", conf: map[string]string{"lock": "create"}}
	s.guests[vmid] = g
	start := r.flag("start")
	upid := s.spawn(r.node, "vzcreate", vmid, r.taskUser(), func(t *task) error {
		t.logf("extracting archive '/var/lib/vz/template/cache/%s'", strings.TrimPrefix(tmpl, "local:vztmpl/"))
		for _, a := range allocs {
			s.addVolume(r.node, a.volid, "rootdir", a.size, vmid)
			t.logf("  Logical volume \"%s\" created.", strings.SplitN(a.volid, ":", 2)[1])
		}
		t.logf("Total bytes read: 534753280 (510MiB, 218MiB/s)")
		t.logf("Detected container architecture: %s", conf["arch"])
		g.conf = conf
		if start {
			if err := s.checkCapacity(g, t); err != nil {
				return err
			}
			s.startGuest(g)
			t.logf("starting CT %d", vmid)
		}
		return nil
	}, func() {
		delete(s.guests, vmid)
	})
	return upid, nil
}

// allocLXCVolume expands "STORAGE:SIZE" in rootfs/mpN to a new volume
// "STORAGE:vm-<vmid>-disk-N,size=<SIZE>G".
func (s *Sim) allocLXCVolume(nodeName string, p *Param, key, v string, vmid int, defStorage string, allocs []alloc) (string, []alloc, error) {
	kv, perr := parsePropertyString(p.Props, v, key)
	if perr != "" {
		return "", nil, paramErr(key, "invalid format - "+perr)
	}
	vol := kv["volume"]
	storage, spec, ok := strings.Cut(vol, ":")
	if !ok {
		if _, isSize := parseSize(vol); isSize && !strings.HasPrefix(vol, "/") {
			storage, spec = defStorage, vol
		} else {
			return v, allocs, nil // bind mount / device
		}
	}
	size, isSize := parseSize(spec)
	if !isSize || strings.ContainsAny(spec, "/-") {
		return v, allocs, nil // existing volume
	}
	sd := s.storage(storage)
	if sd == nil {
		return "", nil, errf(500, "storage '%s' does not exist", storage)
	}
	if !sd.supports("rootdir") {
		return "", nil, errf(500, "storage '%s' does not support container directories", storage)
	}
	volid := freeDiskVolid(storage, vmid, s.volumes[nodeName], allocs)
	kv["volume"] = volid
	kv["size"] = formatSize(size)
	return printPropertyString(p.Props, kv), append(allocs, alloc{volid: volid, size: size}), nil
}

// expandLXCNet adds hwaddr (Proxmox OUI) and type=veth like pve-container.
func (s *Sim) expandLXCNet(p *Param, v string, vmid int) string {
	kv, perr := parsePropertyString(p.Props, v, "net")
	if perr != "" {
		return v
	}
	if kv["hwaddr"] == "" {
		kv["hwaddr"] = s.nextMAC(vmid)
	}
	kv["type"] = "veth"
	return printPropertyString(p.Props, kv)
}

var osTypeRE = regexp.MustCompile(`^(?:.*/)?(debian|ubuntu|alpine|centos|fedora|archlinux|opensuse|devuan|gentoo|nixos|rockylinux|almalinux)`)

func detectOSType(tmpl string) string {
	if m := osTypeRE.FindStringSubmatch(tmpl); m != nil {
		if m[1] == "rockylinux" || m[1] == "almalinux" {
			return "centos"
		}
		return m[1]
	}
	return "unmanaged"
}

// startGuest marks a guest running and applies its pending changes.
func (s *Sim) startGuest(g *guest) {
	g.applyPending()
	g.status = "running"
	g.startedAt = time.Now()
}

func (g *guest) applyPending() {
	for k, v := range g.pending {
		g.conf[k] = v
	}
	for _, k := range g.pendingDel {
		delete(g.conf, k)
	}
	g.pending = nil
	g.pendingDel = nil
}

// POST /nodes/{node}/lxc/{vmid}/status/{start,stop,shutdown,reboot}:
// LXC refuses wrong-state requests synchronously (SEMANTICS.md).
func lxcPower(action string) handlerFunc {
	return func(s *Sim, r *reqCtx) (any, error) {
		g, err := s.loadUnlocked(r, "lxc")
		if err != nil {
			return nil, err
		}
		vmid := g.vmid
		switch action {
		case "start":
			if g.isTemplate() {
				return nil, errf(500, "you can't start a CT if it's a template")
			}
			if g.status == "running" {
				return nil, errf(500, "CT %d already running", vmid)
			}
			return s.spawn(r.node, "vzstart", vmid, r.taskUser(), func(t *task) error {
				if g.status == "running" {
					return fmt.Errorf("CT %d already running", vmid)
				}
				if err := s.checkCapacity(g, t); err != nil {
					return err
				}
				s.startGuest(g)
				return nil
			}, nil), nil
		case "stop":
			if g.status != "running" {
				return nil, errf(500, "CT %d not running", vmid)
			}
			return s.spawn(r.node, "vzstop", vmid, r.taskUser(), func(t *task) error {
				g.status = "stopped"
				return nil
			}, nil), nil
		case "shutdown":
			if g.status != "running" {
				return nil, errf(500, "CT %d not running", vmid)
			}
			timeout := r.int("timeout", 60)
			force := r.flag("forceStop")
			return s.spawn(r.node, "vzshutdown", vmid, r.taskUser(), func(t *task) error {
				if g.ignoreShutdown && !force {
					return fmt.Errorf("command 'lxc-stop -n %d --nokill --timeout %d' failed: exit code 1", vmid, timeout)
				}
				g.status = "stopped"
				return nil
			}, nil), nil
		case "reboot":
			if g.status != "running" {
				return nil, errf(500, "VM %d not running", vmid) // sic: pve-container says VM
			}
			return s.spawn(r.node, "vzreboot", vmid, r.taskUser(), func(t *task) error {
				s.startGuest(g)
				return nil
			}, nil), nil
		}
		return nil, errf(501, "unknown action %s", action)
	}
}

// DELETE /nodes/{node}/lxc/{vmid}
func hLXCDelete(s *Sim, r *reqCtx) (any, error) {
	g, err := s.loadUnlocked(r, "lxc")
	if err != nil {
		return nil, err
	}
	if g.conf["protection"] == "1" {
		return nil, errf(500, "can't remove CT %d - protection mode enabled", g.vmid)
	}
	if g.status == "running" && !r.flag("force") {
		return nil, errf(500, "unable to destroy CT %d - container is running", g.vmid)
	}
	g.conf["lock"] = "destroyed"
	return s.spawn(r.node, "vzdestroy", g.vmid, r.taskUser(), func(t *task) error {
		if g.status == "running" {
			t.logf("stopping CT %d", g.vmid)
			g.status = "stopped"
		}
		s.destroyGuest(g, t, r.flag("purge"))
		return nil
	}, func() { delete(g.conf, "lock") }), nil
}

// GET /nodes/{node}/lxc/{vmid}/interfaces: only for running containers.
func hLXCInterfaces(s *Sim, r *reqCtx) (any, error) {
	g, err := s.loadGuest(r, "lxc")
	if err != nil {
		return nil, err
	}
	if g.status != "running" {
		return nil, errf(500, "CT %d is not running", g.vmid)
	}
	out := []map[string]any{{"name": "lo", "hwaddr": "00:00:00:00:00:00", "inet": "127.0.0.1/8", "inet6": "::1/128"}}
	ep := configEndpoint("lxc")
	for i := 0; i < 32; i++ {
		v, ok := g.conf["net"+strconv.Itoa(i)]
		if !ok {
			continue
		}
		kv, _ := parsePropertyString(ep.Lookup("net0").Props, v, "net")
		e := map[string]any{"name": kv["name"], "hwaddr": strings.ToLower(kv["hwaddr"])}
		switch ip := kv["ip"]; {
		case ip == "dhcp":
			e["inet"] = guestIP(g.vmid, i) + "/24"
		case ip != "" && ip != "manual":
			e["inet"] = ip
		}
		out = append(out, e)
	}
	return out, nil
}
