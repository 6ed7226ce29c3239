package pvesim

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Parameters of POST /nodes/{node}/qemu that steer creation and are not
// written to the VM config (qemu-server API2/Qemu.pm create_vm).
var qemuCreateOnly = map[string]bool{
	"node": true, "vmid": true, "start": true, "archive": true, "force": true, "unique": true,
	"live-restore": true, "pool": true, "bwlimit": true, "storage": true, "import-working-storage": true,
}

// POST /nodes/{node}/qemu
func hQemuCreate(s *Sim, r *reqCtx) (any, error) {
	vmid := r.int("vmid", 0)
	if g := s.guests[vmid]; g != nil {
		return nil, errf(500, "unable to create VM %d - %s %d already exists on node '%s'", vmid, g.typeName(), vmid, g.node)
	}
	if r.has("archive") {
		return nil, errf(500, "unable to create VM %d - restore is not supported by the simulator", vmid)
	}
	conf := createConf(r.params, qemuCreateOnly)
	var allocs []alloc
	for _, k := range slices.Sorted(maps.Keys(conf)) {
		v := conf[k]
		switch {
		case isDiskKey("qemu", k):
			nv, a, err := s.allocQemuDisk(r.node, r.ep.Lookup(k), k, v, vmid, allocs)
			if err != nil {
				return nil, fmt.Errorf("unable to create VM %d - %w", vmid, err)
			}
			conf[k], allocs = nv, a
		case strings.HasPrefix(k, "net") && isDigits(k[3:]):
			conf[k] = s.expandQemuNet(r.ep.Lookup(k), v, vmid)
		case k == "tags":
			conf[k] = normalizeTags(v)
		case k == "cipassword":
			conf[k] = cryptPassword(v)
		}
	}
	now := time.Now().Unix()
	if _, ok := conf["smbios1"]; !ok {
		conf["smbios1"] = "uuid=" + randomUUID()
	}
	if _, ok := conf["vmgenid"]; !ok {
		conf["vmgenid"] = randomUUID()
	}
	conf["meta"] = fmt.Sprintf("creation-qemu=10.0.2,ctime=%d", now)
	if _, ok := conf["boot"]; !ok {
		conf["boot"] = defaultBoot(conf)
	}
	g := &guest{vmid: vmid, node: r.node, kind: "qemu", status: "stopped", conf: map[string]string{"lock": "create"}}
	s.guests[vmid] = g
	start := r.flag("start")
	return s.spawn(r.node, "qmcreate", vmid, r.taskUser(), func(t *task) error {
		for _, a := range allocs {
			s.addVolume(r.node, a.volid, "images", a.size, vmid)
			if a.from != "" {
				t.logf("importing disk '%s' to VM %d ...", a.from, vmid)
			}
			t.logf("  Logical volume \"%s\" created.", strings.SplitN(a.volid, ":", 2)[1])
			t.logf("%s: successfully created disk '%s,size=%s'", a.key, a.volid, formatSize(a.size))
		}
		g.conf = conf
		if start {
			if err := s.checkCapacity(g, t); err != nil {
				return err
			}
			s.startGuest(g)
		}
		return nil
	}, func() { delete(s.guests, vmid) }), nil
}

// allocQemuDisk expands "STORAGE:SIZE", "STORAGE:cloudinit" and
// "STORAGE:0,import-from=VOLID" into new volumes, as qemu-server's
// create_disks does.
func (s *Sim) allocQemuDisk(nodeName string, p *Param, key, v string, vmid int, allocs []alloc) (string, []alloc, error) {
	kv, perr := parsePropertyString(p.Props, v, key)
	if perr != "" {
		return "", nil, paramErr(key, "invalid format - "+perr)
	}
	file := kv["file"]
	storage, spec, ok := strings.Cut(file, ":")
	if !ok {
		return v, allocs, nil // none, cdrom, /dev/...
	}
	from := kv["import-from"]
	size, isSize := parseSize(spec)
	cloudinit := spec == "cloudinit"
	if !cloudinit && (!isSize || strings.ContainsAny(spec, "/")) {
		if strings.Contains(spec, "/") && !strings.HasPrefix(spec, "iso/") && s.volumes[nodeName][file] == nil {
			return "", nil, fmt.Errorf("volume '%s' does not exist", file)
		}
		return v, allocs, nil // existing volume or ISO
	}
	sd := s.storage(storage)
	if sd == nil {
		return "", nil, fmt.Errorf("storage '%s' does not exist", storage)
	}
	if !sd.supports("images") {
		return "", nil, fmt.Errorf("storage '%s' does not support vm images", storage)
	}
	if from != "" {
		src := s.volumes[nodeName][from]
		if src == nil {
			return "", nil, fmt.Errorf("volume '%s' does not exist", from)
		}
		size = src.size
		delete(kv, "import-from")
	}
	var volid string
	switch {
	case cloudinit:
		volid = fmt.Sprintf("%s:vm-%d-cloudinit", storage, vmid)
		size = 4 << 20
		kv["media"] = "cdrom"
	case key == "efidisk0":
		size = 4 << 20
		fallthrough
	default:
		volid = freeDiskVolid(storage, vmid, s.volumes[nodeName], allocs)
		kv["size"] = formatSize(size)
	}
	kv["file"] = volid
	return printPropertyString(p.Props, kv), append(allocs, alloc{key: key, volid: volid, size: size, from: from}), nil
}

// expandQemuNet turns "virtio,bridge=vmbr0" into
// "virtio=BC:24:11:..,bridge=vmbr0" (qemu-server print_net).
func (s *Sim) expandQemuNet(p *Param, v string, vmid int) string {
	kv, perr := parsePropertyString(p.Props, v, "net")
	if perr != "" {
		return v
	}
	mac := kv["macaddr"]
	if mac == "" {
		mac = s.nextMAC(vmid)
	}
	model := kv["model"]
	delete(kv, "model")
	delete(kv, "macaddr")
	parts := []string{model + "=" + strings.ToUpper(mac)}
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		parts = append(parts, k+"="+kv[k])
	}
	return strings.Join(parts, ",")
}

// defaultBoot is qemu-server's boot order for new VMs: disks, then
// CD-ROMs, then the first NIC.
func defaultBoot(conf map[string]string) string {
	var disks, cds []string
	for _, bus := range []string{"scsi", "virtio", "sata", "ide"} {
		for i := 0; i < 31; i++ {
			k := fmt.Sprintf("%s%d", bus, i)
			v, ok := conf[k]
			if !ok {
				continue
			}
			if strings.Contains(v, "media=cdrom") {
				if !strings.Contains(v, "cloudinit") {
					cds = append(cds, k)
				}
			} else {
				disks = append(disks, k)
			}
		}
	}
	order := append(disks, cds...)
	if _, ok := conf["net0"]; ok {
		order = append(order, "net0")
	}
	return "order=" + strings.Join(order, ";")
}

// cryptPassword stands in for qemu-server's crypt(): the plain text never
// stays in the config.
func cryptPassword(pw string) string {
	return "$5$berth$" + fmt.Sprintf("%x", len(pw)*7919)
}

// POST /nodes/{node}/qemu/{vmid}/status/{action}: QEMU reports most
// wrong-state requests inside the task (SEMANTICS.md).
func qemuPower(action string) handlerFunc {
	return func(s *Sim, r *reqCtx) (any, error) {
		g, err := s.loadUnlocked(r, "qemu")
		if err != nil {
			return nil, err
		}
		vmid := g.vmid
		user := r.taskUser()
		switch action {
		case "start":
			return s.spawn(r.node, "qmstart", vmid, user, func(t *task) error {
				if g.isTemplate() {
					return fmt.Errorf("you can't start a vm if it's a template")
				}
				if g.status != "stopped" {
					return fmt.Errorf("VM %d already running", vmid)
				}
				if err := s.checkCapacity(g, t); err != nil {
					return err
				}
				s.startGuest(g)
				return nil
			}, nil), nil
		case "stop":
			return s.spawn(r.node, "qmstop", vmid, user, func(t *task) error {
				g.status = "stopped"
				g.applyPending()
				return nil
			}, nil), nil
		case "shutdown":
			if g.status == "paused" {
				return nil, errf(500, "VM is paused - cannot shutdown")
			}
			force := r.flag("forceStop")
			return s.spawn(r.node, "qmshutdown", vmid, user, func(t *task) error {
				if g.status == "stopped" {
					return nil
				}
				if g.ignoreShutdown && !force {
					return fmt.Errorf("VM quit/powerdown failed - got timeout")
				}
				g.status = "stopped"
				g.applyPending()
				return nil
			}, nil), nil
		case "reboot", "reset":
			if g.status == "stopped" {
				return nil, errf(500, "VM %d not running", vmid)
			}
			typ := "qmreboot"
			if action == "reset" {
				typ = "qmreset"
			}
			return s.spawn(r.node, typ, vmid, user, func(t *task) error {
				if action == "reboot" {
					s.startGuest(g)
				}
				return nil
			}, nil), nil
		}
		return nil, errf(501, "unknown action %s", action)
	}
}

// DELETE /nodes/{node}/qemu/{vmid}
func hQemuDelete(s *Sim, r *reqCtx) (any, error) {
	g, err := s.loadUnlocked(r, "qemu")
	if err != nil {
		return nil, err
	}
	if g.conf["protection"] == "1" {
		return nil, errf(500, "can't remove VM %d - protection mode enabled", g.vmid)
	}
	if g.status != "stopped" {
		return nil, errf(500, "VM %d is running - destroy failed", g.vmid)
	}
	if base := s.linkedBase(g); base != "" {
		return nil, errf(500, "base volume '%s' is still in use by linked cloned", base)
	}
	g.conf["lock"] = "destroyed"
	return s.spawn(r.node, "qmdestroy", g.vmid, r.taskUser(), func(t *task) error {
		s.destroyGuest(g, t, r.flag("purge"))
		return nil
	}, func() { delete(g.conf, "lock") }), nil
}

// linkedBase returns a base volume of this template that a linked clone
// still uses ("" when none).
func (s *Sim) linkedBase(g *guest) string {
	if !g.isTemplate() {
		return ""
	}
	for _, o := range s.guests {
		if o == g {
			continue
		}
		for _, k := range o.diskKeys() {
			vol, _ := volumeOf(o.conf[k])
			if base, _, ok := strings.Cut(vol, "/"); ok && strings.Contains(base, fmt.Sprintf(":base-%d-", g.vmid)) {
				return base
			}
		}
	}
	return ""
}

// GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces
func hAgentNetwork(s *Sim, r *reqCtx) (any, error) {
	g, err := s.loadGuest(r, "qemu")
	if err != nil {
		return nil, err
	}
	if g.status != "running" {
		return nil, errf(500, "VM %d is not running", g.vmid)
	}
	if !agentEnabled(g.conf["agent"]) {
		return nil, errf(500, "No QEMU guest agent configured")
	}
	if time.Since(g.startedAt) < s.opts.AgentDelay {
		return nil, errf(500, "QEMU guest agent is not running")
	}
	ifs := []map[string]any{{
		"name": "lo", "hardware-address": "00:00:00:00:00:00",
		"ip-addresses": []map[string]any{
			{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8},
			{"ip-address-type": "ipv6", "ip-address": "::1", "prefix": 128},
		},
	}}
	netEP := configEndpoint("qemu").Lookup("net0")
	for i := 0; i < 32; i++ {
		v, ok := g.conf[fmt.Sprintf("net%d", i)]
		if !ok {
			continue
		}
		kv, _ := parsePropertyString(netEP.Props, v, "net")
		mac := strings.ToLower(kv["macaddr"])
		addrs := []map[string]any{}
		ip := guestIP(g.vmid, i)
		prefix := 24
		if ipc, ok := g.conf[fmt.Sprintf("ipconfig%d", i)]; ok {
			ipkv, _ := parsePropertyString(ipconfigFormat, ipc, "ipconfig")
			if a, p, ok := strings.Cut(ipkv["ip"], "/"); ok {
				ip = a
				fmt.Sscanf(p, "%d", &prefix)
			}
		}
		addrs = append(addrs, map[string]any{"ip-address-type": "ipv4", "ip-address": ip, "prefix": prefix})
		addrs = append(addrs, map[string]any{"ip-address-type": "ipv6", "ip-address": linkLocal(mac), "prefix": 64})
		ifs = append(ifs, map[string]any{
			"name": fmt.Sprintf("eth%d", i), "hardware-address": mac, "ip-addresses": addrs,
			"statistics": map[string]any{"rx-bytes": 0, "tx-bytes": 0, "rx-packets": 0, "tx-packets": 0, "rx-errs": 0, "tx-errs": 0, "rx-dropped": 0, "tx-dropped": 0},
		})
	}
	return map[string]any{"result": ifs}, nil
}

// linkLocal derives the EUI-64 IPv6 link-local address of a MAC.
func linkLocal(mac string) string {
	var b [6]byte
	fmt.Sscanf(mac, "%02x:%02x:%02x:%02x:%02x:%02x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5])
	return fmt.Sprintf("fe80::%02x%02x:%02xff:fe%02x:%02x%02x", b[0]^2, b[1], b[2], b[3], b[4], b[5])
}

// checkCapacity refuses to start a guest the node cannot hold: more vCPUs
// than host CPUs (qemu-server config_to_command) or more memory than the
// node has left with its running guests (the start fails the way an
// out-of-memory kvm / lxc-start does).
func (s *Sim) checkCapacity(g *guest, t *task) error {
	n := s.findNode(g.node)
	if n == nil {
		return nil
	}
	if g.kind == "qemu" {
		vcpus := g.confInt("vcpus", g.cpus(s))
		if vcpus > int64(n.cpus) || g.cpus(s) > int64(n.cpus) {
			return fmt.Errorf("MAX %d vcpus allowed per VM on this node", n.cpus)
		}
	}
	var used int64
	for _, o := range s.guests {
		if o.node == g.node && o != g && o.status != "stopped" {
			used += o.maxMem()
		}
	}
	if used+g.maxMem() <= n.mem {
		return nil
	}
	if g.kind == "lxc" {
		t.logf("lxc-start: %d: ../src/lxc/cgroups/cgfsng.c: cgroup memory limit exceeds available memory", g.vmid)
		return fmt.Errorf("startup for container '%d' failed", g.vmid)
	}
	t.logf("kvm: cannot set up guest memory 'pc.ram': Cannot allocate memory")
	return fmt.Errorf("start failed: QEMU exited with code 1")
}
