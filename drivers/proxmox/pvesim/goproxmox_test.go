package pvesim_test

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"

	"github.com/berth-dev/berth/drivers/proxmox/pvesim"
)

// These tests drive the simulator through github.com/luthermonson/go-proxmox
// v0.8.2, the client berth's Proxmox drivers use, and pin its quirks
// (SEMANTICS.md): errors surface only as the status line, Task.Wait returns
// nil for a failed task, Container.Config returns a nil *Task.

// startSim runs a simulator for the test's duration.
func startSim(t *testing.T, opts pvesim.Options) *pvesim.Sim {
	t.Helper()
	s, err := pvesim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func goClient(t *testing.T, s *pvesim.Sim, opts ...proxmox.Option) *proxmox.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CertPEM()) {
		t.Fatal("bad PEM")
	}
	if len(opts) == 0 {
		opts = []proxmox.Option{proxmox.WithAPIToken(s.TokenID(), s.TokenSecret())}
	}
	return proxmox.NewClient(s.URL(), append(opts, proxmox.WithRootCAs(pool))...)
}

func wait(t *testing.T, task *proxmox.Task) {
	t.Helper()
	if task == nil {
		t.Fatal("nil task")
	}
	if err := task.Wait(context.Background(), 10*time.Millisecond, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if !task.IsSuccessful {
		t.Fatalf("task %s: %s", task.UPID, task.ExitStatus)
	}
}

func TestGoProxmoxContainerLifecycle(t *testing.T) {
	s := startSim(t, pvesim.Options{TaskDurations: map[string]time.Duration{"": 30 * time.Millisecond}})
	ctx := context.Background()
	c := goClient(t, s)

	v, err := c.Version(ctx)
	if err != nil || v.Release != "9.1" {
		t.Fatalf("version %+v %v", v, err)
	}
	cl, err := c.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, err := cl.NextID(ctx)
	if err != nil || id != 100 {
		t.Fatalf("nextid %d %v", id, err)
	}
	node, err := c.Node(ctx, "pve")
	if err != nil {
		t.Fatal(err)
	}
	task, err := node.NewContainer(ctx, id,
		proxmox.ContainerOption{Name: "ostemplate", Value: "local:vztmpl/debian-12-standard_12.12-1_amd64.tar.zst"},
		proxmox.ContainerOption{Name: "storage", Value: "local-lvm"},
		proxmox.ContainerOption{Name: "hostname", Value: "web"},
		proxmox.ContainerOption{Name: "memory", Value: 256},
		proxmox.ContainerOption{Name: "net0", Value: "name=eth0,bridge=vmbr0,ip=dhcp"},
		proxmox.ContainerOption{Name: "tags", Value: "berth;stack-demo"},
		proxmox.ContainerOption{Name: "unprivileged", Value: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, task)

	ct, err := node.Container(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if ct.Name != "web" || ct.Status != "stopped" || ct.ContainerConfig.Hostname != "web" || ct.Tags != "berth;stack-demo" {
		t.Fatalf("container %+v config %+v", ct, ct.ContainerConfig)
	}
	// Quirk: Container.Config answers a nil *Task (PUT returns null).
	cfgTask, err := ct.Config(ctx, proxmox.ContainerOption{Name: "description", Value: "managed by berth"})
	if err != nil || cfgTask != nil {
		t.Fatalf("Config: task %v err %v", cfgTask, err)
	}
	task, err = ct.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, task)
	// Quirk: a 500 surfaces only as the status line.
	if _, err := ct.Start(ctx); err == nil || err.Error() != "500 CT 100 already running" {
		t.Fatalf("second start: %v", err)
	}
	ifs, err := ct.Interfaces(ctx)
	if err != nil || len(ifs) != 2 || !strings.HasPrefix(ifs[1].Inet, "10.") {
		t.Fatalf("interfaces %v %v", ifs, err)
	}
	task, err = ct.Shutdown(ctx, false, 30)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, task)
	task, err = ct.Delete(ctx, &proxmox.ContainerDeleteOptions{Purge: true})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, task)
	if _, err := node.Container(ctx, id); err == nil || err.Error() != "500 Configuration file 'nodes/pve/lxc/100.conf' does not exist" {
		t.Fatalf("deleted container: %v", err)
	}
	// 400s carry the errors map in the error text.
	_, err = node.NewContainer(ctx, 99, proxmox.ContainerOption{Name: "ostemplate", Value: "x"})
	if err == nil || !strings.Contains(err.Error(), `bad request: 400 Parameter verification failed. - {"vmid":"invalid format - value does not look like a valid VM ID\n"}`) {
		t.Fatalf("bad vmid: %v", err)
	}
	if n := s.Count("POST", "/nodes/{node}/lxc/{vmid}/status/start"); n != 2 {
		t.Fatalf("start calls %d", n)
	}
}

func TestGoProxmoxVMQuirks(t *testing.T) {
	s := startSim(t, pvesim.Options{})
	ctx := context.Background()
	c := goClient(t, s)
	node, err := c.Node(ctx, "pve")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := node.VirtualMachine(ctx, 9000)
	if err != nil || !bool(tmpl.Template) {
		t.Fatalf("template VM %+v %v", tmpl, err)
	}
	newid, task, err := tmpl.Clone(ctx, &proxmox.VirtualMachineCloneOptions{NewID: 101, Name: "app"})
	if err != nil || newid != 101 {
		t.Fatal(newid, err)
	}
	wait(t, task)
	vm, err := node.VirtualMachine(ctx, 101)
	if err != nil {
		t.Fatal(err)
	}
	task, err = vm.Config(ctx,
		proxmox.VirtualMachineOption{Name: "cores", Value: 2},
		proxmox.VirtualMachineOption{Name: "ipconfig0", Value: "ip=10.9.8.7/24,gw=10.9.8.1"},
		proxmox.VirtualMachineOption{Name: "sshkeys", Value: proxmox.EncodeSSHKeys("ssh-ed25519 AAAA test@berth")})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, task)
	task, err = vm.ResizeDisk(ctx, "scsi0", "+5G")
	if err != nil {
		t.Fatal(err)
	}
	wait(t, task)
	task, err = vm.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wait(t, task)
	ifs, err := vm.AgentGetNetworkIFaces(ctx)
	if err != nil || len(ifs) != 1 || ifs[0].IPAddresses[0].IPAddress != "10.9.8.7" {
		t.Fatalf("agent interfaces %+v %v", ifs, err)
	}
	// Quirk: starting a running VM is a task error and Task.Wait returns nil.
	task, err = vm.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Wait(ctx, 10*time.Millisecond, 10*time.Second); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if !task.IsFailed || task.ExitStatus != "VM 101 already running" {
		t.Fatalf("task %+v", task)
	}
	if _, err := vm.Delete(ctx, nil); err == nil || err.Error() != "500 VM 101 is running - destroy failed" {
		t.Fatalf("delete running: %v", err)
	}
	s.FailTask("qmstop", 101, "can't lock file '/var/lock/qemu-server/lock-101.conf' - got timeout")
	task, err = vm.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Wait(ctx, 10*time.Millisecond, 10*time.Second); err != nil || !task.IsFailed {
		t.Fatalf("failed stop: %v %+v", err, task)
	}
	task, _ = vm.Stop(ctx)
	wait(t, task)
	// A hung task runs into Wait's own timeout.
	s.HangTask("qmstart", 101)
	task, err = vm.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Wait(ctx, 10*time.Millisecond, 100*time.Millisecond); !proxmox.IsTimeout(err) {
		t.Fatalf("hung task Wait: %v", err)
	}
	if err := task.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	task, err = vm.Delete(ctx, &proxmox.VirtualMachineDeleteOptions{Purge: true, DestroyUnreferencedDisks: true})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, task)
}

func TestGoProxmoxAuth(t *testing.T) {
	s := startSim(t, pvesim.Options{})
	ctx := context.Background()
	bad := goClient(t, s, proxmox.WithAPIToken(s.TokenID(), "nope"))
	if _, err := bad.Version(ctx); !errors.Is(err, proxmox.ErrNotAuthorized) {
		t.Fatalf("bad token: %v", err)
	}
	// Ticket login with credentials, then a write that needs the CSRF token.
	c := goClient(t, s, proxmox.WithCredentials(&proxmox.Credentials{Username: "root@pam", Password: s.Password()}))
	node, err := c.Node(ctx, "pve")
	if err != nil {
		t.Fatal(err)
	}
	task, err := node.NewVirtualMachine(ctx, 200, proxmox.VirtualMachineOption{Name: "scsi0", Value: "local-lvm:4"})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, task)
	if !strings.HasSuffix(string(task.UPID), ":qmcreate:200:root@pam:") {
		t.Fatalf("upid %s", task.UPID)
	}
	// An unpinned client refuses the self-signed certificate.
	plain := proxmox.NewClient(s.URL(), proxmox.WithAPIToken(s.TokenID(), s.TokenSecret()))
	if _, err := plain.Version(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("unpinned client: %v", err)
	}
}

func TestGoProxmoxStorageAndCluster(t *testing.T) {
	s := startSim(t, pvesim.Options{Nodes: 2})
	ctx := context.Background()
	c := goClient(t, s)
	node, err := c.Node(ctx, "pve")
	if err != nil {
		t.Fatal(err)
	}
	storages, err := node.Storages(ctx)
	if err != nil || len(storages) != 2 {
		t.Fatalf("storages %v %v", storages, err)
	}
	local, err := node.Storage(ctx, "local")
	if err != nil || !strings.Contains(local.Content, "vztmpl") {
		t.Fatalf("storage local %+v %v", local, err)
	}
	task, err := local.DownloadURL(ctx, "iso", "alpine.iso", "https://example.invalid/alpine.iso")
	if err != nil {
		t.Fatal(err)
	}
	wait(t, task)
	iso, err := local.ISO(ctx, "alpine.iso")
	if err != nil || iso.VolID != "local:iso/alpine.iso" {
		t.Fatalf("iso %+v %v", iso, err)
	}
	content, err := local.GetContent(ctx)
	if err != nil || len(content) != 5 {
		t.Fatalf("content %d %v", len(content), err)
	}
	apls, err := node.Appliances(ctx)
	if err != nil || len(apls) == 0 {
		t.Fatalf("appliances %v %v", apls, err)
	}
	upid, err := node.DownloadAppliance(ctx, apls[0].Template, "local")
	if err != nil || !strings.HasPrefix(upid, "UPID:pve:") {
		t.Fatalf("download appliance %q %v", upid, err)
	}
	tmpl, err := node.VzTmpl(ctx, "alpine-3.22-default_20250617_amd64.tar.xz", "local")
	if err != nil {
		t.Fatal(err)
	}
	task, err = node.NewContainer(ctx, 0, // 0: go-proxmox asks /cluster/nextid
		proxmox.ContainerOption{Name: "ostemplate", Value: tmpl.VolID},
		proxmox.ContainerOption{Name: "storage", Value: "local-lvm"})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, task)
	cl, err := c.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := cl.Resources(ctx, "vm")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rs {
		if r.VMID == 100 && r.Type == "lxc" && r.Node == "pve" {
			found = true
		}
	}
	if !found {
		t.Fatalf("resources %+v", rs)
	}
	ct, err := node.Container(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := ct.Template(ctx); err != nil {
		t.Fatal(err)
	}
	tasks, err := node.Tasks(ctx, nil)
	if err != nil || len(tasks) < 3 {
		t.Fatalf("tasks %d %v", len(tasks), err)
	}
	nodes, err := c.Nodes(ctx)
	if err != nil || len(nodes) != 2 {
		t.Fatalf("nodes %v %v", nodes, err)
	}
}
