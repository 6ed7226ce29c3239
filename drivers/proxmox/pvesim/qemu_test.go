package pvesim

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func createVM(t *testing.T, s *Sim, vmid string, extra ...string) string {
	t.Helper()
	var upid string
	mustOK(t, call(t, s, "POST", "/nodes/pve/qemu", form(append([]string{"vmid", vmid}, extra...)...)), &upid)
	return upid
}

func taskExit(t *testing.T, s *Sim, upid string) string {
	t.Helper()
	exit, ok := s.WaitTask(upid, 10*time.Second)
	if !ok {
		t.Fatalf("task %s did not finish", upid)
	}
	return exit
}

func TestQemuCreateExpandsConfig(t *testing.T) {
	s := newSim(t, Options{})
	waitOK(t, s, createVM(t, s, "100", "name", "db", "memory", "2048", "cores", "2",
		"scsi0", "local-lvm:32,iothread=1", "ide2", "local-lvm:cloudinit", "net0", "virtio,bridge=vmbr0",
		"scsihw", "virtio-scsi-single", "agent", "1", "ipconfig0", "ip=10.1.2.3/24,gw=10.1.2.1",
		"description", "line one\nline two\n", "tags", "b;A,a", "cipassword", "secret"))
	wantErr(t, call(t, s, "POST", "/nodes/pve/qemu", form("vmid", "100")), 500,
		"unable to create VM 100 - VM 100 already exists on node 'pve'")
	waitOK(t, s, createCT(t, s, "101"))
	wantErr(t, call(t, s, "POST", "/nodes/pve/qemu", form("vmid", "101")), 500,
		"unable to create VM 101 - CT 101 already exists on node 'pve'")

	var c map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve/qemu/100/config", nil), &c)
	checks := map[string]string{
		"scsi0":       `^local-lvm:vm-100-disk-0,iothread=1,size=32G$`,
		"ide2":        `^local-lvm:vm-100-cloudinit,media=cdrom$`,
		"net0":        `^virtio=BC:24:11:[0-9A-F]{2}:[0-9A-F]{2}:[0-9A-F]{2},bridge=vmbr0$`,
		"smbios1":     `^uuid=[0-9a-f-]{36}$`,
		"vmgenid":     `^[0-9a-f-]{36}$`,
		"meta":        `^creation-qemu=[0-9.]+,ctime=\d+$`,
		"boot":        `^order=scsi0;net0$`,
		"memory":      `^2048$`,
		"tags":        `^a;b$`,
		"description": `^line one\nline two$`,
		"cipassword":  `^\*{10}$`,
	}
	for k, re := range checks {
		v, ok := c[k].(string)
		if !ok || !regexp.MustCompile(re).MatchString(v) {
			t.Errorf("config[%s] = %#v, want match %s", k, c[k], re)
		}
	}
	if c["cores"] != float64(2) {
		t.Errorf("cores = %#v, want number 2", c["cores"])
	}
	if _, ok := c["lock"]; ok {
		t.Errorf("lock left after create: %v", c["lock"])
	}
}

func TestQemuPowerAsymmetries(t *testing.T) {
	s := newSim(t, Options{AgentDelay: time.Hour})
	waitOK(t, s, createVM(t, s, "100", "agent", "1", "net0", "virtio,bridge=vmbr0"))
	base := "/nodes/pve/qemu/100/status/"
	var upid string
	// Stopping or shutting down a stopped VM is a successful task.
	mustOK(t, call(t, s, "POST", base+"stop", nil), &upid)
	waitOK(t, s, upid)
	mustOK(t, call(t, s, "POST", base+"shutdown", nil), &upid)
	waitOK(t, s, upid)
	wantErr(t, call(t, s, "POST", base+"reboot", nil), 500, "VM 100 not running")
	wantErr(t, call(t, s, "GET", "/nodes/pve/qemu/100/agent/network-get-interfaces", nil), 500, "VM 100 is not running")

	mustOK(t, call(t, s, "POST", base+"start", nil), &upid)
	waitOK(t, s, upid)
	// Starting a running VM is accepted and fails inside the task.
	mustOK(t, call(t, s, "POST", base+"start", nil), &upid)
	if got := taskExit(t, s, upid); got != "VM 100 already running" {
		t.Fatalf("second start: %q", got)
	}
	var st map[string]any
	mustOK(t, call(t, s, "GET", base+"current", nil), &st)
	if st["status"] != "running" || st["qmpstatus"] != "running" || st["name"] != "VM 100" || st["agent"] != float64(1) {
		t.Fatalf("status/current %v", st)
	}
	wantErr(t, call(t, s, "GET", "/nodes/pve/qemu/100/agent/network-get-interfaces", nil), 500, "QEMU guest agent is not running")
	wantErr(t, call(t, s, "DELETE", "/nodes/pve/qemu/100", nil), 500, "VM 100 is running - destroy failed")

	s.SetPaused(100, true)
	mustOK(t, call(t, s, "GET", base+"current", nil), &st)
	if st["status"] != "running" || st["qmpstatus"] != "paused" {
		t.Fatalf("paused status %v", st)
	}
	wantErr(t, call(t, s, "POST", base+"shutdown", nil), 500, "VM is paused - cannot shutdown")
	s.SetPaused(100, false)

	s.SetIgnoreShutdown(100, true)
	mustOK(t, call(t, s, "POST", base+"shutdown", form("timeout", "10")), &upid)
	if got := taskExit(t, s, upid); got != "VM quit/powerdown failed - got timeout" {
		t.Fatalf("ignored shutdown: %q", got)
	}
	mustOK(t, call(t, s, "POST", base+"shutdown", form("timeout", "10", "forceStop", "1")), &upid)
	waitOK(t, s, upid)
	mustOK(t, call(t, s, "DELETE", "/nodes/pve/qemu/100", form("purge", "1", "destroy-unreferenced-disks", "1")), &upid)
	waitOK(t, s, upid)
	wantErr(t, call(t, s, "GET", "/nodes/pve/qemu/100/config", nil), 500, "Configuration file 'nodes/pve/qemu-server/100.conf' does not exist")
}

func TestQemuAgentNetwork(t *testing.T) {
	s := newSim(t, Options{})
	waitOK(t, s, createVM(t, s, "100", "net0", "virtio,bridge=vmbr0", "ipconfig0", "ip=10.1.2.3/24"))
	var upid string
	mustOK(t, call(t, s, "POST", "/nodes/pve/qemu/100/status/start", nil), &upid)
	waitOK(t, s, upid)
	wantErr(t, call(t, s, "GET", "/nodes/pve/qemu/100/agent/network-get-interfaces", nil), 500, "No QEMU guest agent configured")
	// agent is not hot-pluggable: it stays pending until the VM restarts.
	mustOK(t, call(t, s, "PUT", "/nodes/pve/qemu/100/config", form("agent", "enabled=1")), nil)
	wantErr(t, call(t, s, "GET", "/nodes/pve/qemu/100/agent/network-get-interfaces", nil), 500, "No QEMU guest agent configured")
	mustOK(t, call(t, s, "POST", "/nodes/pve/qemu/100/status/reboot", nil), &upid)
	waitOK(t, s, upid)
	var res struct {
		Result []struct {
			Name  string `json:"name"`
			HW    string `json:"hardware-address"`
			Addrs []struct {
				Type   string `json:"ip-address-type"`
				Addr   string `json:"ip-address"`
				Prefix int    `json:"prefix"`
			} `json:"ip-addresses"`
		} `json:"result"`
	}
	mustOK(t, call(t, s, "GET", "/nodes/pve/qemu/100/agent/network-get-interfaces", nil), &res)
	if len(res.Result) != 2 || res.Result[1].Addrs[0].Addr != "10.1.2.3" || res.Result[1].Addrs[0].Prefix != 24 ||
		!strings.HasPrefix(res.Result[1].HW, "bc:24:11:") {
		t.Fatalf("agent result %+v", res)
	}
}

func TestCloneTemplateResize(t *testing.T) {
	s := newSim(t, Options{})
	var upid string
	// Linked clone of the seeded cloud-init template.
	mustOK(t, call(t, s, "POST", "/nodes/pve/qemu/9000/clone", form("newid", "120", "name", "web1")), &upid)
	if !strings.Contains(upid, ":qmclone:9000:") {
		t.Fatalf("clone upid %s", upid)
	}
	waitOK(t, s, upid)
	var c map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve/qemu/120/config", nil), &c)
	if c["scsi0"] != "local-lvm:base-9000-disk-0/vm-120-disk-0,size=3G" || c["name"] != "web1" || c["ide2"] != "local-lvm:vm-120-cloudinit,media=cdrom" {
		t.Fatalf("linked clone config %v", c)
	}
	if _, ok := c["template"]; ok {
		t.Fatal("clone inherited template flag")
	}
	wantErr(t, call(t, s, "POST", "/nodes/pve/qemu/9000/clone", form("newid", "120")), 500, "VM 120 already exists on node 'pve'")
	wantErr(t, call(t, s, "DELETE", "/nodes/pve/qemu/9000", nil), 500, "base volume 'local-lvm:base-9000-disk-0' is still in use by linked cloned")

	// Full clone of a normal VM; linked is refused.
	wantErr(t, call(t, s, "POST", "/nodes/pve/qemu/120/clone", form("newid", "121", "full", "0")), 500, "Linked clone feature is not supported for drive 'ide2'")
	mustOK(t, call(t, s, "POST", "/nodes/pve/qemu/120/clone", form("newid", "121", "full", "1", "storage", "local-lvm")), &upid)
	waitOK(t, s, upid)
	mustOK(t, call(t, s, "GET", "/nodes/pve/qemu/121/config", nil), &c)
	if c["scsi0"] != "local-lvm:vm-121-disk-0,size=3G" || c["name"] != "Copy-of-VM-web1" {
		t.Fatalf("full clone config %v", c)
	}

	mustOK(t, call(t, s, "PUT", "/nodes/pve/qemu/121/resize", form("disk", "scsi0", "size", "+2G")), &upid)
	waitOK(t, s, upid)
	mustOK(t, call(t, s, "PUT", "/nodes/pve/qemu/121/resize", form("disk", "scsi0", "size", "10G")), &upid)
	waitOK(t, s, upid)
	mustOK(t, call(t, s, "GET", "/nodes/pve/qemu/121/config", nil), &c)
	if c["scsi0"] != "local-lvm:vm-121-disk-0,size=10G" {
		t.Fatalf("resized %v", c["scsi0"])
	}
	wantErr(t, call(t, s, "PUT", "/nodes/pve/qemu/121/resize", form("disk", "scsi0", "size", "4G")), 500, "shrinking disks is not supported")

	mustOK(t, call(t, s, "POST", "/nodes/pve/qemu/121/template", nil), &upid)
	waitOK(t, s, upid)
	mustOK(t, call(t, s, "GET", "/nodes/pve/qemu/121/config", nil), &c)
	if c["template"] != float64(1) || c["scsi0"] != "local-lvm:base-121-disk-0,size=10G" {
		t.Fatalf("template config %v", c)
	}
	mustOK(t, call(t, s, "POST", "/nodes/pve/qemu/121/status/start", nil), &upid)
	if got := taskExit(t, s, upid); got != "you can't start a vm if it's a template" {
		t.Fatalf("start template: %q", got)
	}

	// LXC: template conversion answers null; start is refused synchronously.
	waitOK(t, s, createCT(t, s, "130"))
	r := call(t, s, "POST", "/nodes/pve/lxc/130/template", nil)
	mustOK(t, r, nil)
	if string(r.body["data"]) != "null" {
		t.Fatalf("lxc template data %s", r.body["data"])
	}
	wantErr(t, call(t, s, "POST", "/nodes/pve/lxc/130/status/start", nil), 500, "you can't start a CT if it's a template")
	mustOK(t, call(t, s, "POST", "/nodes/pve/lxc/130/clone", form("newid", "131", "hostname", "ct-clone")), &upid)
	waitOK(t, s, upid)
	mustOK(t, call(t, s, "GET", "/nodes/pve/lxc/131/config", nil), &c)
	if c["rootfs"] != "local-lvm:base-130-disk-0/vm-131-disk-0,size=4G" || c["hostname"] != "ct-clone" {
		t.Fatalf("lxc clone %v", c)
	}
}

func TestNodeCapacity(t *testing.T) {
	s := newSim(t, Options{NodeCPUs: 4, NodeMemory: 4 << 30})
	waitOK(t, s, createVM(t, s, "100", "cores", "8"))
	var upid string
	mustOK(t, call(t, s, "POST", "/nodes/pve/qemu/100/status/start", nil), &upid)
	if got := taskExit(t, s, upid); got != "MAX 4 vcpus allowed per VM on this node" {
		t.Fatalf("too many cores: %q", got)
	}
	waitOK(t, s, createVM(t, s, "101", "memory", "3072"))
	waitOK(t, s, createVM(t, s, "102", "memory", "2048"))
	mustOK(t, call(t, s, "POST", "/nodes/pve/qemu/101/status/start", nil), &upid)
	waitOK(t, s, upid)
	mustOK(t, call(t, s, "POST", "/nodes/pve/qemu/102/status/start", nil), &upid)
	if got := taskExit(t, s, upid); got != "start failed: QEMU exited with code 1" {
		t.Fatalf("out of memory: %q", got)
	}
	waitOK(t, s, createCT(t, s, "103", "memory", "2048"))
	mustOK(t, call(t, s, "POST", "/nodes/pve/lxc/103/status/start", nil), &upid)
	if got := taskExit(t, s, upid); got != "startup for container '103' failed" {
		t.Fatalf("lxc out of memory: %q", got)
	}
}
