package lxc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/hostcmd"
	"github.com/berth-dev/berth/internal/testenv"
	"github.com/berth-dev/berth/manifest"
)

// requireLXC skips (loudly) when the lxc tools or root are missing, and
// fails instead under CI=true, where they must be present.
func requireLXC(t testing.TB) {
	t.Helper()
	var missing []string
	for _, tool := range []string{"lxc-create", "lxc-start", "lxc-ls", "lxc-attach", "lxc-destroy"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	switch {
	case len(missing) > 0:
		testenv.Unavailable(t, "real LXC test", "lxc tools missing ("+strings.Join(missing, ", ")+"): apt-get install -y lxc")
	case os.Geteuid() != 0:
		testenv.Unavailable(t, "real LXC test", "it needs root")
	}
}

// realDriver is a driver on a private temporary lxcpath; every container
// left in it is destroyed when the test ends.
func realDriver(t testing.TB, cfg Config) *Driver {
	t.Helper()
	requireLXC(t)
	if cfg.LXCPath == "" {
		cfg.LXCPath = t.TempDir()
	}
	d, err := New(cfg, hostcmd.Local{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { destroyAll(t, cfg.LXCPath) })
	return d
}

func destroyAll(t testing.TB, lxcpath string) {
	out, _ := exec.Command("lxc-ls", "-P", lxcpath, "-1").Output()
	for _, n := range strings.Fields(string(out)) {
		if o, err := exec.Command("lxc-destroy", "-P", lxcpath, "-n", n, "-f").CombinedOutput(); err != nil {
			t.Logf("cleanup %s: %v: %s", n, err, o)
		}
	}
}

// uniqueName keeps real container names distinct across lxcpaths: LXC's
// cgroup names (lxc.payload.NAME) are host-wide.
func uniqueName(prefix string) string {
	b := make([]byte, 3)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func target(stack, name string, inst *manifest.Instance) drivers.Target {
	spec, _ := json.Marshal(inst)
	return drivers.Target{Stack: stack, Instance: inst, ObjectName: name,
		Owner: drivers.Ownership{Stack: stack, Instance: inst.Name, SpecHash: "h1", Spec: spec}}
}

func lxcCgroup(t *testing.T, lxcpath, name, key string) string {
	t.Helper()
	out, err := exec.Command("lxc-cgroup", "-P", lxcpath, "-n", name, key).CombinedOutput()
	if err != nil {
		t.Fatalf("lxc-cgroup %s: %v: %s", key, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestRealLifecycle(t *testing.T) {
	d := realDriver(t, Config{})
	ctx := context.Background()
	name := uniqueName("life")
	auto := true
	inst := &manifest.Instance{Name: "web", Backend: "lxc", Hostname: "webhost",
		Memory: 256 * manifest.MiB, CPUs: 0.5, Autostart: &auto,
		Environment: map[string]string{"GREETING": "hello world", "MODE": "test"},
		Template:    &manifest.Template{Type: "busybox"}}
	ref, err := d.Create(ctx, target("st", name, inst))
	if err != nil {
		t.Fatal(err)
	}
	obs := observeOne(t, d, name)
	if obs.State != drivers.StateCreated || obs.Owner == nil || obs.Owner.Stack != "st" || obs.Owner.Instance != "web" {
		t.Fatalf("after create: %+v", obs)
	}
	if got := string(obs.Live["memory"]); got != `"256M"` {
		t.Errorf("live memory = %s, want \"256M\"", got)
	}
	if got := string(obs.Live["cpus"]); got != `0.5` {
		t.Errorf("live cpus = %s, want 0.5", got)
	}
	if err := d.Start(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, ref); err != nil {
		t.Fatalf("second start of a running container: %v", err)
	}
	obs = observeOne(t, d, name)
	if obs.State != drivers.StateRunning {
		t.Fatalf("state after start = %s", obs.State)
	}
	if got := lxcCgroup(t, d.LXCPath(), name, "memory.limit_in_bytes"); got != "268435456" {
		t.Errorf("memory.limit_in_bytes = %s", got)
	}
	if got := lxcCgroup(t, d.LXCPath(), name, "cpu.cfs_quota_us"); got != "50000" {
		t.Errorf("cfs_quota_us = %s", got)
	}

	var out bytes.Buffer
	code, err := d.Exec(ctx, ref, drivers.ExecRequest{Argv: []string{"sh", "-c", "echo \"$GREETING|$MODE|$EXTRA|$HOME_LEAK\"; hostname; exit 7"},
		Env: map[string]string{"EXTRA": "x"}, Stdout: &out})
	if err != nil || code != 7 {
		t.Fatalf("exec: code %d err %v", code, err)
	}
	if got := out.String(); got != "hello world|test|x|\nwebhost\n" {
		t.Errorf("exec output %q", got)
	}
	if code, err := d.Exec(ctx, ref, drivers.ExecRequest{Argv: []string{"no-such-binary"}}); err != nil || code != 127 {
		t.Errorf("missing binary: code %d err %v, want 127", code, err)
	}

	// Memory and cpus change in place: same init PID, new cgroup values.
	pid := lxcInfo(t, d.LXCPath(), name, "-pH")
	inst.Memory, inst.CPUs = 512*manifest.MiB, 1.5
	if err := d.Update(ctx, ref, target("st", name, inst), []string{"memory", "cpus"}); err != nil {
		t.Fatal(err)
	}
	if got := lxcCgroup(t, d.LXCPath(), name, "memory.limit_in_bytes"); got != "536870912" {
		t.Errorf("after update memory.limit_in_bytes = %s", got)
	}
	if got := lxcCgroup(t, d.LXCPath(), name, "cpu.cfs_quota_us"); got != "150000" {
		t.Errorf("after update cfs_quota_us = %s", got)
	}
	if got := lxcInfo(t, d.LXCPath(), name, "-pH"); got != pid {
		t.Errorf("init pid changed %s -> %s: update restarted the container", pid, got)
	}
	obs = observeOne(t, d, name)
	if string(obs.Live["memory"]) != `"512M"` || string(obs.Live["cpus"]) != "1.5" {
		t.Errorf("live after update: %s", obs.Live)
	}
	// A limit changed outside berth (lxc-cgroup) is what Observe reports.
	if out, err := exec.Command("lxc-cgroup", "-P", d.LXCPath(), "-n", name, "memory.limit_in_bytes", "300M").CombinedOutput(); err != nil {
		t.Fatalf("lxc-cgroup: %v: %s", err, out)
	}
	if obs := observeOne(t, d, name); string(obs.Live["memory"]) != `"300M"` {
		t.Errorf("live memory after an outside lxc-cgroup change = %s, want \"300M\"", obs.Live["memory"])
	}
	var logs bytes.Buffer
	if err := d.Logs(ctx, ref, false, &logs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "console") {
		t.Errorf("console log: %q", logs.String())
	}

	if err := d.Stop(ctx, ref, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx, ref, time.Second); err != nil {
		t.Fatalf("stopping a stopped container: %v", err)
	}
	if obs := observeOne(t, d, name); obs.State != drivers.StateStopped {
		t.Errorf("state after stop = %s", obs.State)
	}
	if _, err := d.Exec(ctx, ref, drivers.ExecRequest{Argv: []string{"true"}}); !errors.Is(err, drivers.ErrNotRunning) {
		t.Errorf("exec in stopped container: %v, want ErrNotRunning", err)
	}
	if err := d.Delete(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.LXCPath(), name)); !os.IsNotExist(err) {
		t.Errorf("container directory left behind: %v", err)
	}
	if err := d.Delete(ctx, ref); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
}

func lxcInfo(t *testing.T, lxcpath, name, flag string) string {
	t.Helper()
	out, err := exec.Command("lxc-info", "-P", lxcpath, "-n", name, flag).CombinedOutput()
	if err != nil {
		t.Fatalf("lxc-info %s: %v: %s", flag, err, out)
	}
	return strings.TrimSpace(string(out))
}

func observeOne(t *testing.T, d *Driver, name string) drivers.ObservedInstance {
	t.Helper()
	all, err := d.Observe(context.Background(), "st")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range all {
		if o.Ref.Name == name {
			return o
		}
	}
	t.Fatalf("%s not observed in %+v", name, all)
	return drivers.ObservedInstance{}
}

// A container berth did not make is observed as foreign, its name cannot
// be taken, and berth refuses to destroy it.
func TestRealForeignContainer(t *testing.T) {
	d := realDriver(t, Config{})
	ctx := context.Background()
	name := uniqueName("foreign")
	base := filepath.Join(t.TempDir(), "base.conf")
	os.WriteFile(base, []byte("lxc.net.0.type = empty\n"), 0o644)
	if out, err := exec.Command("lxc-create", "-P", d.LXCPath(), "-n", name, "-t", "busybox", "-f", base).CombinedOutput(); err != nil {
		t.Fatalf("lxc-create: %v: %s", err, out)
	}
	obs := observeOne(t, d, name)
	if obs.Owner != nil {
		t.Fatalf("foreign container observed with owner %+v", obs.Owner)
	}
	inst := &manifest.Instance{Name: "web", Backend: "lxc", Template: &manifest.Template{Type: "busybox"}}
	if _, err := d.Create(ctx, target("st", name, inst)); !errors.Is(err, drivers.ErrExists) {
		t.Fatalf("create over a foreign container: %v, want ErrExists", err)
	}
	if err := d.Delete(ctx, d.ref(name)); err == nil {
		t.Fatal("delete of a foreign container succeeded")
	}
	if _, err := os.Stat(filepath.Join(d.LXCPath(), name, "config")); err != nil {
		t.Fatalf("foreign container damaged: %v", err)
	}
}

// A template that cannot run leaves nothing in the lxcpath.
func TestRealTemplateFailureLeavesNothing(t *testing.T) {
	d := realDriver(t, Config{})
	ctx := context.Background()
	dir := t.TempDir()
	bad := filepath.Join(dir, "rootfs.tar.xz")
	os.WriteFile(bad, []byte("not a tarball"), 0o644)
	meta := filepath.Join(dir, "meta.tar.xz")
	os.WriteFile(meta, []byte("not a tarball"), 0o644)
	inst := &manifest.Instance{Name: "bad", Backend: "lxc", Template: &manifest.Template{Type: "local", Rootfs: bad, Meta: meta}}
	name := uniqueName("bad")
	_, err := d.Create(ctx, target("st", name, inst))
	if !errors.Is(err, ErrTemplateFailed) || !strings.Contains(err.Error(), "xz: (stdin): File format not recognized") {
		t.Fatalf("create from a broken local template: %v, want ErrTemplateFailed quoting xz", err)
	}
	if _, err := os.Stat(filepath.Join(d.LXCPath(), name)); !os.IsNotExist(err) {
		t.Fatalf("failed create left %s behind (%v)", name, err)
	}
	inst.Template.Rootfs = filepath.Join(dir, "missing.tar.xz")
	if _, err := d.Create(ctx, target("st", name, inst)); !errors.Is(err, ErrTemplateUnavailable) {
		t.Fatalf("missing rootfs tarball: %v, want ErrTemplateUnavailable", err)
	}
}

// fixtureRootfs builds a small busybox root filesystem (examples/
// mkrootfs.sh) whose init keeps running, with a marker file that proves a
// container's rootfs came from it.
func fixtureRootfs(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("sh", "../../examples/mkrootfs.sh", dir).CombinedOutput(); err != nil {
		t.Fatalf("mkrootfs.sh: %v: %s", err, out)
	}
	files := map[string]string{
		"etc/inittab":       "::sysinit:/etc/init.d/rcS\n::respawn:/bin/sleep 3600\n",
		"etc/init.d/rcS":    "#!/bin/sh\n",
		"etc/berth-fixture": "made by fixtureRootfs\n",
	}
	for p, content := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, "sbin"), 0o755)
	os.Symlink("../bin/busybox", filepath.Join(dir, "sbin", "init"))
	return dir
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, t.Name(), tool+" missing (apt-get install -y busybox-static skopeo umoci jq)")
		}
	}
}

// The local and oci templates make containers from a rootfs tarball and
// an OCI image layout; the oci image's environment reaches exec.
func TestRealTemplates(t *testing.T) {
	requireLXC(t)
	needTools(t, "busybox", "tar")
	d := realDriver(t, Config{})
	ctx := context.Background()
	rootfs := fixtureRootfs(t)
	work := t.TempDir()

	check := func(t *testing.T, inst *manifest.Instance, wantEnv string) {
		t.Helper()
		name := uniqueName(inst.Name)
		tg := target("st", name, inst)
		tg.StackDir = work
		ref, err := d.Create(ctx, tg)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Delete(ctx, ref)
		if err := d.Start(ctx, ref); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		code, err := d.Exec(ctx, ref, drivers.ExecRequest{Argv: []string{"sh", "-c", "cat /etc/berth-fixture; echo \"env=$FOO\""}, Stdout: &out})
		if err != nil || code != 0 {
			t.Fatalf("exec: %d %v", code, err)
		}
		if want := "made by fixtureRootfs\nenv=" + wantEnv + "\n"; out.String() != want {
			t.Errorf("exec output %q, want %q", out.String(), want)
		}
	}

	t.Run("local", func(t *testing.T) {
		meta := filepath.Join(work, "meta")
		os.MkdirAll(meta, 0o755)
		os.WriteFile(filepath.Join(meta, "config"), []byte("lxc.mount.auto = proc:mixed sys:ro cgroup:mixed\nlxc.autodev = 1\n"), 0o644)
		run(t, "tar", "-C", meta, "-cJf", filepath.Join(work, "meta.tar.xz"), "config")
		run(t, "tar", "-C", rootfs, "-cJf", filepath.Join(work, "rootfs.tar.xz"), ".")
		check(t, &manifest.Instance{Name: "local", Backend: "lxc",
			Template: &manifest.Template{Type: "local", Rootfs: "rootfs.tar.xz", Meta: "meta.tar.xz"}}, "")
	})
	t.Run("oci", func(t *testing.T) {
		needTools(t, "umoci", "skopeo", "jq")
		layout := filepath.Join(work, "layout")
		bundle := filepath.Join(work, "bundle")
		run(t, "umoci", "init", "--layout", layout)
		run(t, "umoci", "new", "--image", layout+":v1")
		run(t, "umoci", "unpack", "--image", layout+":v1", bundle)
		run(t, "cp", "-a", rootfs+"/.", filepath.Join(bundle, "rootfs"))
		run(t, "umoci", "repack", "--image", layout+":v1", bundle)
		run(t, "umoci", "config", "--image", layout+":v1", "--config.env", "FOO=from-image")
		check(t, &manifest.Instance{Name: "oci", Backend: "lxc",
			Template: &manifest.Template{Type: "oci", Image: "layout:v1"}}, "from-image")
	})
}

// Restart fields (environment, hostname, networks, mounts) are written by
// Update and take effect at the next start; a bridge berth created is
// removed with its last container.
func TestRealRestartUpdate(t *testing.T) {
	br := "brt" + uniqueName("")[1:]
	t.Cleanup(func() { exec.Command("ip", "link", "del", br).Run() })
	d := realDriver(t, Config{Bridge: br, CreateBridge: true})
	ctx := context.Background()
	name := uniqueName("rst")
	share := t.TempDir()
	os.WriteFile(filepath.Join(share, "hello.txt"), []byte("from the host\n"), 0o644)
	inst := &manifest.Instance{Name: "app", Backend: "lxc", Template: &manifest.Template{Type: "busybox"},
		Environment: map[string]string{"V": "one"}, Hostname: "first",
		Networks: []manifest.Network{{Type: "veth", IP: "10.232.7.10/24", Gateway: "10.232.7.1"}}}
	ref, err := d.Create(ctx, target("st", name, inst))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, ref); err != nil {
		t.Fatal(err)
	}
	probe := func() string {
		t.Helper()
		var out bytes.Buffer
		code, err := d.Exec(ctx, ref, drivers.ExecRequest{Stdout: &out, Argv: []string{"sh", "-c",
			`echo "$V $(hostname) $(ip -4 -o addr show eth0 | awk '{print $4}') $(cat /mnt/share/hello.txt 2>/dev/null)"`}})
		if err != nil || code != 0 {
			t.Fatalf("probe: %d %v", code, err)
		}
		return strings.TrimSpace(out.String())
	}
	if got := probe(); got != "one first 10.232.7.10/24" {
		t.Errorf("before update: %q", got)
	}
	if obs := observeOne(t, d, name); len(obs.IPs) != 1 || obs.IPs[0] != "10.232.7.10" {
		t.Errorf("observed IPs %v", obs.IPs)
	}
	inst.Environment["V"] = "two"
	inst.Hostname = "second"
	inst.Networks[0].IP = "10.232.7.20/24"
	inst.Mounts = []manifest.Mount{{Source: share, Target: "/mnt/share", ReadOnly: true}}
	if err := d.Update(ctx, ref, target("st", name, inst), []string{"environment", "hostname", "networks", "mounts"}); err != nil {
		t.Fatal(err)
	}
	// exec builds its environment from the config, so it sees the new
	// value at once; hostname, address and mount wait for the restart.
	if got := probe(); got != "two first 10.232.7.10/24" {
		t.Errorf("before the restart: %q", got)
	}
	if err := d.Stop(ctx, ref, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if got := probe(); got != "two second 10.232.7.20/24 from the host" {
		t.Errorf("after restart: %q", got)
	}
	if err := d.Delete(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/sys/class/net/" + br); err == nil {
		t.Errorf("bridge %s berth created survived its last container", br)
	}
}

// The download template either works (online) or fails as "template
// unavailable" naming the image server (offline), never as a bare
// lxc-create error.
func TestRealDownloadTemplate(t *testing.T) {
	d := realDriver(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := uniqueName("dl")
	inst := &manifest.Instance{Name: "dl", Backend: "lxc",
		Template: &manifest.Template{Type: "download", Dist: "alpine", Release: "3.19", Arch: "amd64"}}
	ref, err := d.Create(ctx, target("st", name, inst))
	if err != nil {
		if !errors.Is(err, ErrTemplateUnavailable) || !strings.Contains(err.Error(), "images.linuxcontainers.org") {
			t.Fatalf("offline download: %v, want ErrTemplateUnavailable naming the image server", err)
		}
		if _, serr := os.Stat(filepath.Join(d.LXCPath(), name)); !os.IsNotExist(serr) {
			t.Errorf("failed download left %s behind", name)
		}
		t.Logf("offline: %v", err)
		return
	}
	defer d.Delete(ctx, ref)
	if _, err := os.Stat(filepath.Join(d.LXCPath(), name, "rootfs", "etc", "alpine-release")); err != nil {
		t.Errorf("downloaded rootfs is not alpine: %v", err)
	}
}

// A veth on a bridge that does not exist (and that berth was not asked to
// create) fails to start with LXC's reason quoted.
func TestRealStartMissingBridge(t *testing.T) {
	d := realDriver(t, Config{})
	ctx := context.Background()
	name := uniqueName("nobr")
	inst := &manifest.Instance{Name: "nobr", Backend: "lxc", Template: &manifest.Template{Type: "busybox"},
		Networks: []manifest.Network{{Type: "veth", Bridge: "nosuchbr" + uniqueName("")[1:5]}}}
	ref, err := d.Create(ctx, target("st", name, inst))
	if err != nil {
		t.Fatal(err)
	}
	err = d.Start(ctx, ref)
	if !errors.Is(err, ErrStartFailed) || !strings.Contains(err.Error(), "bridge interface doesn't exist") {
		t.Fatalf("start on a missing bridge: %v, want ErrStartFailed quoting LXC", err)
	}
}

// On cgroup v1 memory must stay <= memory+swap: raising both in place
// sets memsw first, lowering sets memory first; removing the limits
// resets both to unlimited.
func TestRealSwapInPlace(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err != nil {
		t.Skip("no cgroup v1 swap accounting on this host")
	}
	d := realDriver(t, Config{})
	ctx := context.Background()
	name := uniqueName("swap")
	inst := &manifest.Instance{Name: "swap", Backend: "lxc", Template: &manifest.Template{Type: "busybox"},
		Memory: 256 * manifest.MiB, Swap: 128 * manifest.MiB}
	ref, err := d.Create(ctx, target("st", name, inst))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx, ref); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mem, swap      manifest.ByteSize
		wantMem, wantW string
	}{
		{512 * manifest.MiB, 256 * manifest.MiB, "536870912", "805306368"},
		{64 * manifest.MiB, 32 * manifest.MiB, "67108864", "100663296"},
	} {
		inst.Memory, inst.Swap = tc.mem, tc.swap
		if err := d.Update(ctx, ref, target("st", name, inst), []string{"memory", "swap"}); err != nil {
			t.Fatalf("update to %s+%s: %v", tc.mem, tc.swap, err)
		}
		if got := lxcCgroup(t, d.LXCPath(), name, "memory.limit_in_bytes"); got != tc.wantMem {
			t.Errorf("memory %s: limit_in_bytes = %s, want %s", tc.mem, got, tc.wantMem)
		}
		if got := lxcCgroup(t, d.LXCPath(), name, "memory.memsw.limit_in_bytes"); got != tc.wantW {
			t.Errorf("memory %s swap %s: memsw = %s, want %s", tc.mem, tc.swap, got, tc.wantW)
		}
	}
	inst.Memory, inst.Swap = 0, 0
	if err := d.Update(ctx, ref, target("st", name, inst), []string{"memory", "swap"}); err != nil {
		t.Fatalf("removing the limits: %v", err)
	}
	if got := lxcCgroup(t, d.LXCPath(), name, "memory.limit_in_bytes"); len(got) < 15 {
		t.Errorf("after removing the limit, limit_in_bytes = %s, want unlimited", got)
	}
	if obs := observeOne(t, d, name); obs.Live["memory"] != nil {
		t.Errorf("live memory after removing the limit = %s, want none", obs.Live["memory"])
	}
}
