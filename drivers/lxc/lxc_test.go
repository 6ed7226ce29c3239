package lxc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/hostcmd"
	"github.com/berth-dev/berth/manifest"
)

func boolp(b bool) *bool { return &b }

// asRoot lets replay tests construct a driver when run as non-root.
func asRoot(t *testing.T) {
	old := geteuid
	geteuid = func() int { return 0 }
	t.Cleanup(func() { geteuid = old })
}

// replayDriver is a driver on a fixture lxcpath answering from recordings.
func replayDriver(t *testing.T, mode CgroupMode) (*Driver, *hostcmd.Replayer) {
	t.Helper()
	asRoot(t)
	dir, rep := loadFixtures(t)
	d, err := New(Config{LXCPath: dir, Cgroup: mode, SwapAccounting: boolp(true)}, rep)
	if err != nil {
		t.Fatal(err)
	}
	return d, rep
}

func TestParseLs(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
		want []lsRow
	}{
		{"empty lxcpath", "", nil},
		{"multi-value cells", "NAME   STATE   PID  GROUPS            IPV4                 \n" +
			"a      RUNNING 12   berth, berth-st   10.0.0.2, 10.0.0.3   \n" +
			"bb     STOPPED -    -                 -                    \n",
			[]lsRow{
				{"NAME": "a", "STATE": "RUNNING", "PID": "12", "GROUPS": "berth, berth-st", "IPV4": "10.0.0.2, 10.0.0.3"},
				{"NAME": "bb", "STATE": "STOPPED", "PID": "", "GROUPS": "", "IPV4": ""},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseLs([]byte(tc.out))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
	if _, err := parseLs([]byte("garbage here\n")); err == nil {
		t.Error("a header without NAME parsed")
	}
}

// Observe on recorded lxc-ls output: berth's own containers carry their
// owner, state (created vs stopped from the start log), IPs and live
// limits; the hand-made container is foreign.
func TestObserveRecorded(t *testing.T) {
	d, rep := replayDriver(t, CgroupV1)
	// st-web (pid 19680 in the recording) runs in a fake cgroup tree
	// where someone raised its memory to 1G and lifted the swap limit
	// with lxc-cgroup: the live values say so.
	fake := t.TempDir()
	fakeCgroups(t, fake, map[string]string{
		"19680/cgroup": "4:memory:/lxc.payload.st-web\n1:cpu:/lxc.payload.st-web\n0::/lxc.payload.st-web\n",
		"mem/lxc.payload.st-web/memory.limit_in_bytes":       "1073741824\n",
		"mem/lxc.payload.st-web/memory.memsw.limit_in_bytes": "9223372036854771712\n",
		"cpu/lxc.payload.st-web/cpu.cfs_quota_us":            "50000\n",
		"cpu/lxc.payload.st-web/cpu.cfs_period_us":           "100000\n",
	}, map[string]string{"memory": fake + "/mem", "cpu": fake + "/cpu"})
	obs, err := d.Observe(context.Background(), "st")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Calls) != 1 {
		t.Errorf("observe ran %d commands, want one lxc-ls: %v", len(rep.Calls), rep.Calls)
	}
	var lines []string
	for _, o := range obs {
		owner := "foreign"
		if o.Owner != nil {
			owner = o.Owner.Stack + "/" + o.Owner.Instance
		}
		lines = append(lines, fmt.Sprintf("%s %s %s ips=%v memory=%s swap=%s cpus=%s", o.Ref.Name, o.State, owner, o.IPs,
			o.Live["memory"], o.Live["swap"], o.Live["cpus"]))
	}
	want := []string{
		`hand-made running foreign ips=[] memory= swap= cpus=`,
		`other-app created other/app ips=[] memory= swap= cpus=2`,
		`st-db created st/db ips=[] memory="1G" swap= cpus=`,
		`st-web running st/web ips=[10.99.0.10 10.99.0.11] memory="1G" swap= cpus=0.5`,
	}
	if got := strings.Join(lines, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("observed:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	for _, o := range obs {
		if o.Ref.Backend != "lxc" || o.Created.IsZero() {
			t.Errorf("%s: ref %+v created %v", o.Ref.Name, o.Ref, o.Created)
		}
	}
}

// The managed block for both cgroup key sets.
func TestBlockCgroupKeys(t *testing.T) {
	inst := &manifest.Instance{Name: "web", Memory: 256 * manifest.MiB, Swap: 64 * manifest.MiB, CPUs: 1.5,
		Hostname: "web1", Autostart: boolp(true),
		Environment: map[string]string{"B": "2", "A": "1 2"},
		Mounts: []manifest.Mount{{Source: "data", Target: "/srv/data", ReadOnly: true},
			{Type: "tmpfs", Target: "/run/x", Options: []string{"size=16m"}}},
	}
	for _, tc := range []struct {
		mode CgroupMode
		want []string
	}{
		{CgroupV1, []string{
			"lxc.cgroup.memory.limit_in_bytes = 268435456",
			"lxc.cgroup.memory.memsw.limit_in_bytes = 335544320",
			"lxc.cgroup.cpu.cfs_period_us = 100000",
			"lxc.cgroup.cpu.cfs_quota_us = 150000",
		}},
		{CgroupV2, []string{
			"lxc.cgroup2.memory.max = 268435456",
			"lxc.cgroup2.memory.swap.max = 67108864",
			"lxc.cgroup2.cpu.max = 150000 100000",
		}},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			d := &Driver{cfg: Config{LXCPath: "/var/lib/lxc", Cgroup: tc.mode}, keys: keysFor(tc.mode), memsw: true}
			got, err := d.block(drivers.Target{Instance: inst, ObjectName: "st-web", StackDir: "/stack"})
			if err != nil {
				t.Fatal(err)
			}
			want := append([]string{blockMarker}, tc.want...)
			want = append(want,
				"lxc.uts.name = web1",
				"lxc.environment = A=1 2",
				"lxc.environment = B=2",
				"lxc.start.auto = 1",
				"lxc.net =",
				"lxc.net.0.type = empty",
				"lxc.mount.entry = /stack/data srv/data none bind,ro,create=dir 0 0",
				"lxc.mount.entry = tmpfs run/x tmpfs size=16m,create=dir 0 0",
				"lxc.console.logfile = /var/lib/lxc/st-web/console.log",
			)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("block:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// What was written reads back as the same spec values.
			c := containerConfig{}
			for _, l := range got[1:] {
				k, v, _ := strings.Cut(l, " = ")
				c[k] = append(c[k], v)
			}
			live := d.live(c)
			if string(live["memory"]) != `"256M"` || string(live["swap"]) != `"64M"` || string(live["cpus"]) != "1.5" {
				t.Errorf("live read-back: memory %s swap %s cpus %s", live["memory"], live["swap"], live["cpus"])
			}
		})
	}
}

func TestNetworkLines(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bridge  string
		nets    []manifest.Network
		want    []string
		wantErr string
	}{
		{name: "default without provider bridge is loopback only", want: []string{"lxc.net =", "lxc.net.0.type = empty"}},
		{name: "default with provider bridge is dhcp veth", bridge: "br0",
			want: []string{"lxc.net =", "lxc.net.0.type = veth", "lxc.net.0.link = br0", "lxc.net.0.flags = up", "lxc.net.0.name = eth0"}},
		{name: "none", bridge: "br0", nets: []manifest.Network{{Type: "none"}}, want: []string{"lxc.net =", "lxc.net.0.type = empty"}},
		{name: "static", nets: []manifest.Network{{Type: "veth", Bridge: "lxcbr1", IP: "10.0.3.5/24", Gateway: "10.0.3.1", MTU: 1400, HWAddr: "00:16:3e:00:00:01"}},
			want: []string{"lxc.net =", "lxc.net.0.type = veth", "lxc.net.0.link = lxcbr1", "lxc.net.0.flags = up", "lxc.net.0.name = eth0",
				"lxc.net.0.hwaddr = 00:16:3e:00:00:01", "lxc.net.0.mtu = 1400", "lxc.net.0.ipv4.address = 10.0.3.5/24", "lxc.net.0.ipv4.gateway = 10.0.3.1"}},
		{name: "veth without any bridge", nets: []manifest.Network{{Type: "veth"}}, wantErr: "needs a bridge"},
		{name: "bad ip", bridge: "br0", nets: []manifest.Network{{IP: "10.0.3.5"}}, wantErr: "IPv4 CIDR"},
		{name: "unknown type", bridge: "br0", nets: []manifest.Network{{Type: "macvlan"}}, wantErr: "none and veth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Driver{cfg: Config{Bridge: tc.bridge}}
			got, err := d.networkLines(&manifest.Instance{Networks: tc.nets})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestTemplateArgs(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rootfs.tar.xz"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "meta.tar.xz"), nil, 0o644)
	os.MkdirAll(filepath.Join(dir, "img"), 0o755)
	os.WriteFile(filepath.Join(dir, "img", "index.json"), []byte("{}"), 0o644)
	for _, tc := range []struct {
		tpl      *manifest.Template
		wantName string
		wantArgs []string
		wantErr  error
	}{
		{nil, "busybox", nil, nil},
		{&manifest.Template{Type: "download", Dist: "debian", Release: "bookworm", Arch: "arm64"}, "download",
			[]string{"--dist", "debian", "--release", "bookworm", "--arch", "arm64"}, nil},
		{&manifest.Template{Type: "local", Rootfs: "rootfs.tar.xz", Meta: "meta.tar.xz"}, "local",
			[]string{"--metadata", dir + "/meta.tar.xz", "--fstree", dir + "/rootfs.tar.xz"}, nil},
		{&manifest.Template{Type: "local", Rootfs: "gone.tar.xz", Meta: "meta.tar.xz"}, "", nil, ErrTemplateUnavailable},
		{&manifest.Template{Type: "oci", Image: "img:v1"}, "oci", []string{"--url", "oci:" + dir + "/img:v1"}, nil},
		{&manifest.Template{Type: "oci", Image: "docker://alpine:3"}, "oci", []string{"--url", "docker://alpine:3"}, nil},
		{&manifest.Template{Type: "oci", Image: "nolayout:v1"}, "", nil, ErrTemplateUnavailable},
	} {
		name, args, err := templateArgs(tc.tpl, dir)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("%+v: err %v, want %v", tc.tpl, err, tc.wantErr)
			}
			continue
		}
		if err != nil || name != tc.wantName || !reflect.DeepEqual(args, tc.wantArgs) {
			t.Errorf("%+v: got %s %v %v", tc.tpl, name, args, err)
		}
	}
}

// Each recorded tool failure classifies into the error the executor acts on.
func TestClassifyRecorded(t *testing.T) {
	d, rep := replayDriver(t, CgroupV1)
	ctx := context.Background()
	P := d.LXCPath()
	for _, tc := range []struct {
		argv []string
		want error
	}{
		{[]string{"lxc-info", "-P", P, "-n", "missing", "-sH"}, drivers.ErrNotFound},
		{[]string{"lxc-destroy", "-P", P, "-n", "missing", "-f"}, drivers.ErrNotFound},
		{[]string{"lxc-start", "-P", P, "-n", "missing", "-d", "-o", P + "/missing/lxc.log", "-l", "INFO"}, drivers.ErrNotFound},
		{[]string{"lxc-attach", "-P", P, "-n", "st-db", "--clear-env", "--", "true"}, drivers.ErrNotRunning},
	} {
		_, err := rep.Command(ctx, tc.argv[0], tc.argv[1:]...).Output()
		if err == nil {
			t.Errorf("%v: recorded success", tc.argv)
			continue
		}
		if got := classify("op", tc.argv[4], err); !errors.Is(got, tc.want) {
			t.Errorf("%v: classified %v, want %v", tc.argv, got, tc.want)
		}
	}
	// lxc-create failures are recorded with a temporary base config path:
	// classify their output directly.
	for _, tc := range []struct {
		stderr string
		want   error
	}{
		{"lxc-create: hand-made: ../src/lxc/tools/lxc_create.c: main: 264 Container already exists\n", drivers.ErrExists},
		{"lxc-create: x1: ../src/lxc/lxccontainer.c: __lxcapi_create: 1799 Template \"nosuch\" not found\n", ErrTemplateUnavailable},
		{"ERROR: Failed to download https://images.linuxcontainers.org//meta/1.0/index-system\n", ErrTemplateUnavailable},
		{"xz: (stdin): File format not recognized\nlxc-create: b: ../src/lxc/lxccontainer.c: create_run_template: 1628 Failed to create container from template\n", ErrTemplateFailed},
	} {
		err := &hostcmd.RunError{Argv: []string{"lxc-create"}, Output: []byte(tc.stderr), Err: errors.New("exit status 1")}
		if got := classify("create", "x", err); !errors.Is(got, tc.want) {
			t.Errorf("%q: classified %v, want %v", tc.stderr, got, tc.want)
		}
	}
	missing := &hostcmd.RunError{Argv: []string{"lxc-ls"}, Err: fmt.Errorf("exec: %w", exec.ErrNotFound)}
	got := classify("observe", "x", missing)
	if !errors.Is(got, drivers.ErrToolMissing) || !strings.Contains(got.Error(), `Debian package "lxc"`) {
		t.Errorf("tool missing: %v", got)
	}
}

func TestStopAndDeleteRecorded(t *testing.T) {
	d, _ := replayDriver(t, CgroupV1)
	ctx := context.Background()
	// lxc-stop exits 2 for a stopped container: that is success.
	if err := d.Stop(ctx, d.ref("st-db"), 10*time.Second); err != nil {
		t.Errorf("stop of a stopped container: %v", err)
	}
	if err := d.Stop(ctx, d.ref("missing"), 10*time.Second); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("stop of a missing container: %v", err)
	}
	// The foreign container has no sidecar: never destroyed.
	if err := d.Delete(ctx, d.ref("hand-made")); err == nil || !strings.Contains(err.Error(), "ownership record") {
		t.Errorf("delete of a foreign container: %v", err)
	}
}

// Update of a running container sets the new limits with lxc-cgroup and
// rewrites the config block and the sidecar; the v2 key set is used on a
// pure cgroup2 host.
func TestUpdateInPlaceKeys(t *testing.T) {
	for _, tc := range []struct {
		mode CgroupMode
		want [][]string
	}{
		{CgroupV1, [][]string{
			{"memory.limit_in_bytes", "536870912"},
			{"memory.memsw.limit_in_bytes", "-1"},
			{"cpu.cfs_period_us", "100000"},
			{"cpu.cfs_quota_us", "200000"},
		}},
		{CgroupV2, [][]string{
			{"memory.max", "536870912"},
			{"memory.swap.max", "max"},
			{"cpu.max", "200000 100000"},
		}},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "st-web"), 0o755)
			os.WriteFile(filepath.Join(dir, "st-web", "config"), []byte("lxc.uts.name = st-web\n"), 0o644)
			os.WriteFile(filepath.Join(dir, "st-web", sidecarName), []byte(`{"version":1,"owner":{"stack":"st","instance":"web","spec_hash":"old"}}`), 0o644)
			recs := []hostcmd.Recording{{Argv: []string{"lxc-info", "-P", dir, "-n", "st-web", "-sH"}, Stdout: "RUNNING\n"}}
			for _, kv := range tc.want {
				recs = append(recs, hostcmd.Recording{Argv: []string{"lxc-cgroup", "-P", dir, "-n", "st-web", "--", kv[0], kv[1]}})
			}
			rep := hostcmd.NewReplayer(recs...)
			asRoot(t)
			d, err := New(Config{LXCPath: dir, Cgroup: tc.mode, SwapAccounting: boolp(true)}, rep)
			if err != nil {
				t.Fatal(err)
			}
			inst := &manifest.Instance{Name: "web", Memory: 512 * manifest.MiB, CPUs: 2}
			tg := target("st", "st-web", inst)
			tg.Owner.SpecHash = "new"
			if err := d.Update(context.Background(), d.ref("st-web"), tg, []string{"memory", "cpus"}); err != nil {
				t.Fatal(err)
			}
			var got [][]string
			for _, c := range rep.Calls[1:] {
				got = append(got, c[len(c)-2:])
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("lxc-cgroup calls %v, want %v", got, tc.want)
			}
			sc, err := d.readSidecar("st-web")
			if err != nil || sc.Owner.SpecHash != "new" {
				t.Errorf("sidecar after update: %+v %v", sc, err)
			}
			c, _ := readConfig(filepath.Join(dir, "st-web", "config"))
			if string(d.live(c)["memory"]) != `"512M"` {
				t.Errorf("config after update: %v", c)
			}
		})
	}
}

// A second update replaces the managed block instead of appending to it,
// and keeps what is above it.
func TestWriteBlockReplaces(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config")
	os.WriteFile(p, []byte("lxc.rootfs.path = dir:/x\n"), 0o644)
	if err := writeBlock(p, []string{blockMarker, "lxc.uts.name = a"}); err != nil {
		t.Fatal(err)
	}
	if err := writeBlock(p, []string{blockMarker, "lxc.uts.name = b"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	want := "lxc.rootfs.path = dir:/x\n\n" + blockMarker + "\nlxc.uts.name = b\n"
	if string(b) != want {
		t.Errorf("config:\n%s\nwant:\n%s", b, want)
	}
}

func TestBusyboxDHCP(t *testing.T) {
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "c", "rootfs")
	os.MkdirAll(filepath.Join(rootfs, "etc/init.d"), 0o755)
	rcS := filepath.Join(rootfs, "etc/init.d/rcS")
	os.WriteFile(rcS, []byte("#!/bin/sh\n/bin/syslogd\n/bin/mount -a\n/bin/udhcpc\n"), 0o755)
	d := &Driver{cfg: Config{LXCPath: dir}}
	write := func(nets string) {
		os.WriteFile(filepath.Join(dir, "c", "config"), []byte("lxc.rootfs.path = dir:"+rootfs+"\n"+nets), 0o644)
		if err := d.busyboxDHCP("c"); err != nil {
			t.Fatal(err)
		}
	}
	write("lxc.net.0.type = veth\nlxc.net.0.name = eth0\nlxc.net.0.ipv4.address = 10.0.0.2/24\nlxc.net.1.type = veth\n")
	b, _ := os.ReadFile(rcS)
	if want := "#!/bin/sh\n/bin/syslogd\n/bin/mount -a\n/bin/udhcpc -b -i eth1 # berth: dhcp on eth1\n"; string(b) != want {
		t.Errorf("rcS:\n%s\nwant:\n%s", b, want)
	}
	write("lxc.net.0.type = empty\n")
	b, _ = os.ReadFile(rcS)
	if !strings.Contains(string(b), "udhcpc off") || strings.Contains(string(b), "-i eth") {
		t.Errorf("rcS without dhcp interfaces:\n%s", b)
	}
	write("lxc.net.0.type = veth\n")
	b, _ = os.ReadFile(rcS)
	if !strings.Contains(string(b), "/bin/udhcpc -b -i eth0") {
		t.Errorf("rcS after re-enabling dhcp:\n%s", b)
	}
}

func TestNewRefusesNonRoot(t *testing.T) {
	old := geteuid
	geteuid = func() int { return 1000 }
	defer func() { geteuid = old }()
	if _, err := New(Config{LXCPath: t.TempDir()}, hostcmd.NewReplayer()); !errors.Is(err, ErrNotRoot) {
		t.Errorf("New as non-root: %v, want ErrNotRoot", err)
	}
}

func TestCapabilities(t *testing.T) {
	c := (&Driver{}).Capabilities()
	for field, want := range map[string]drivers.ChangeKind{
		"memory": drivers.InPlace, "cpus": drivers.InPlace, "hostname": drivers.Restart,
		"environment": drivers.Restart, "networks": drivers.Restart, "mounts": drivers.Restart,
		"template": drivers.Replace, "depends_on": drivers.Ignore, "healthcheck": drivers.Ignore,
		"something-new": drivers.Replace,
	} {
		if got := c.Cost(field); got != want {
			t.Errorf("%s: %v, want %v", field, got, want)
		}
	}
	if c.CreateBeforeDestroy {
		t.Error("LXC names are exclusive: CreateBeforeDestroy must be false")
	}
}

// A bridge berth created goes with the last container attached to it; one
// berth did not create is never deleted.
func TestReleaseBridge(t *testing.T) {
	dir := t.TempDir()
	cfg := "lxc.net.0.type = veth\nlxc.net.0.link = brx\n"
	for _, n := range []string{"a", "b"} {
		os.MkdirAll(filepath.Join(dir, n), 0o755)
		os.WriteFile(filepath.Join(dir, n, "config"), []byte(cfg), 0o644)
		os.WriteFile(filepath.Join(dir, n, sidecarName), []byte(`{"version":1,"owner":{"stack":"s","instance":"`+n+`"}}`), 0o644)
	}
	rep := hostcmd.NewReplayer(
		hostcmd.Recording{Argv: []string{"lxc-destroy", "-P", dir, "-n", "a", "-f"}},
		hostcmd.Recording{Argv: []string{"lxc-destroy", "-P", dir, "-n", "b", "-f"}},
		hostcmd.Recording{Argv: []string{"ip", "link", "del", "brx"}},
	)
	asRoot(t)
	d, err := New(Config{LXCPath: dir, Bridge: "brx", CreateBridge: true, Cgroup: CgroupV1}, rep)
	if err != nil {
		t.Fatal(err)
	}
	d.bridge.exists = func(string) bool { return true }
	os.MkdirAll(d.bridgeMarkDir(), 0o755)
	os.WriteFile(filepath.Join(d.bridgeMarkDir(), "brx"), nil, 0o644)
	ctx := context.Background()
	// lxc-destroy is replayed, so remove each directory as it would.
	del := func(n string) {
		t.Helper()
		if err := d.Delete(ctx, d.ref(n)); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(filepath.Join(dir, n))
	}
	del("a")
	for _, c := range rep.Calls {
		if c[0] == "ip" {
			t.Fatalf("bridge deleted while b still uses it: %v", rep.Calls)
		}
	}
	del("b")
	if last := rep.Calls[len(rep.Calls)-1]; strings.Join(last, " ") != "ip link del brx" {
		t.Errorf("last call %v, want ip link del brx", last)
	}
	if _, err := os.Stat(d.bridgeMarkDir()); !os.IsNotExist(err) {
		t.Errorf("bridge marker dir left in the lxcpath: %v", err)
	}
}

// A missing lxc-* binary is ErrToolMissing naming the apt package.
func TestToolMissing(t *testing.T) {
	asRoot(t)
	t.Setenv("PATH", t.TempDir())
	d, err := New(Config{LXCPath: t.TempDir()}, hostcmd.Local{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Observe(context.Background(), "st")
	if !errors.Is(err, drivers.ErrToolMissing) || !strings.Contains(err.Error(), "apt-get install -y lxc") {
		t.Errorf("observe without lxc-ls: %v", err)
	}
	if _, err := New(Config{}, hostcmd.Local{}); !errors.Is(err, drivers.ErrToolMissing) {
		t.Errorf("New without lxc-config: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe to read while Logs writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Logs copies the console log and, with follow, what is appended later,
// until the context ends.
func TestLogsFollow(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "c"), 0o755)
	logPath := filepath.Join(dir, "c", "console.log")
	os.WriteFile(filepath.Join(dir, "c", "config"), []byte("lxc.console.logfile = "+logPath+"\n"), 0o644)
	os.WriteFile(logPath, []byte("boot line\n"), 0o644)
	d := &Driver{cfg: Config{LXCPath: dir}}
	var once bytes.Buffer
	if err := d.Logs(context.Background(), d.ref("c"), false, &once); err != nil || once.String() != "boot line\n" {
		t.Fatalf("logs: %q %v", once.String(), err)
	}
	old := logPollInterval
	logPollInterval = 5 * time.Millisecond
	defer func() { logPollInterval = old }()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error)
	go func() { done <- d.Logs(ctx, d.ref("c"), true, &out) }()
	f, _ := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("later line\n")
	f.Close()
	for !strings.Contains(out.String(), "later line") {
		select {
		case err := <-done:
			t.Fatalf("follow returned early: %v (%q)", err, out.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "boot line\nlater line\n" {
		t.Errorf("followed %q", got)
	}
	if err := d.Logs(context.Background(), d.ref("gone"), false, &once); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("logs of a missing container: %v", err)
	}
}

// fakeCgroups points procRoot and the cgroup mount table at a fake tree
// for the duration of a test.
func fakeCgroups(t *testing.T, root string, files, mounts map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	oldRoot, oldMounts := procRoot, cgroupMounts
	procRoot = root
	cgroupMounts = func() map[string]string { return mounts }
	t.Cleanup(func() { procRoot, cgroupMounts = oldRoot, oldMounts })
}

// On a pure cgroup2 host the unified files are read; a limit lifted at
// runtime ("max") shows as null next to a configured one.
func TestLiveRunningV2(t *testing.T) {
	fake := t.TempDir()
	fakeCgroups(t, fake, map[string]string{
		"42/cgroup":                        "0::/lxc.payload.c\n",
		"v2/lxc.payload.c/memory.max":      "max\n",
		"v2/lxc.payload.c/memory.swap.max": "0\n",
		"v2/lxc.payload.c/cpu.max":         "150000 100000\n",
	}, map[string]string{"": fake + "/v2"})
	d := &Driver{keys: keysFor(CgroupV2), memsw: true}
	cfg := containerConfig{"lxc.cgroup2.memory.max": {"268435456"}, "lxc.cgroup2.cpu.max": {"50000 100000"}}
	live := d.liveRunning("42", cfg)
	if string(live["memory"]) != "null" || string(live["cpus"]) != "1.5" {
		t.Errorf("live = memory %s cpus %s, want null and 1.5", live["memory"], live["cpus"])
	}
	// Not running / no cgroup: the config speaks.
	live = d.liveRunning("", cfg)
	if string(live["memory"]) != `"256M"` || string(live["cpus"]) != "0.5" {
		t.Errorf("config live = memory %s cpus %s", live["memory"], live["cpus"])
	}
}

func TestParseCgroupMounts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mountinfo")
	os.WriteFile(p, []byte(`25 24 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
`), 0o644)
	got := parseCgroupMounts(p)
	want := map[string]string{"": "/sys/fs/cgroup/unified", "memory": "/sys/fs/cgroup/memory", "cpu": "/sys/fs/cgroup/cpu,cpuacct"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mounts %v, want %v", got, want)
	}
}

// A cpus value finer than the CFS quota can hold reads back as written,
// not as a drift; a real change still shows.
func TestAlignCPUs(t *testing.T) {
	for _, tc := range []struct{ live, spec, want string }{
		{"0.33333", `{"cpus":0.333333}`, "0.333333"},
		{"0.5", `{"cpus":0.333333}`, "0.5"},
		{"1.5", `{"memory":"1G"}`, "1.5"},
	} {
		live := map[string]json.RawMessage{"cpus": json.RawMessage(tc.live)}
		alignCPUs(live, json.RawMessage(tc.spec))
		if got := string(live["cpus"]); got != tc.want {
			t.Errorf("live %s spec %s: got %s, want %s", tc.live, tc.spec, got, tc.want)
		}
	}
}

// The start log's ERROR lines become the start error, without LXC's
// subsystem and source location.
func TestStartErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lxc.log")
	old := "lxc-start c 20261127005541.400 INFO     conf - ../src/lxc/conf.c:run:1 - an older run\n"
	log := old + `lxc-start brm 20261127005541.410 ERROR    network - ../src/lxc/network.c:netdev_configure_server_veth:711 - No such file or directory - Failed to attach "vethHB0Jnx" to bridge "nosuchbr0", bridge interface doesn't exist
lxc-start brm 20261127005541.424 ERROR    network - ../src/lxc/network.c:lxc_create_network_priv:3427 - No such file or directory - Failed to create network device
lxc-start brm 20261127005541.424 INFO     start - ../src/lxc/start.c:x:1 - not an error
lxc-start brm 20261127005541.424 ERROR    start - ../src/lxc/start.c:lxc_spawn:1840 - Failed to create the network
lxc-start brm 20261127005541.424 ERROR    lxc_start - ../src/lxc/tools/lxc_start.c:main:306 - The container failed to start
`
	os.WriteFile(p, []byte(log), 0o644)
	got := startErrors(p, int64(len(old)))
	want := `No such file or directory - Failed to attach "vethHB0Jnx" to bridge "nosuchbr0", bridge interface doesn't exist; ` +
		`No such file or directory - Failed to create network device; Failed to create the network`
	if got != want {
		t.Errorf("startErrors:\n%s\nwant:\n%s", got, want)
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"quickstart-web": true, "a.b_c-1": true, "": false, "../etc": false,
		"a/b": false, "-x": false, "a..b": false, strings.Repeat("a", 65): false} {
		if err := checkName(name); (err == nil) != ok {
			t.Errorf("checkName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

// Two providers pointing at one lxcpath both see every container, but
// only the one that made a container owns it.
func TestProviderSharingLXCPath(t *testing.T) {
	dir, rep := loadFixtures(t)
	asRoot(t)
	d, err := New(Config{LXCPath: dir, Provider: "other", Cgroup: CgroupV1}, rep)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := d.Observe(context.Background(), "st")
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 4 {
		t.Fatalf("observed %d containers, want all 4", len(obs))
	}
	for _, o := range obs {
		if o.Owner != nil {
			t.Errorf("%s: owned through provider other, but made without a provider", o.Ref.Name)
		}
	}
	if err := d.Delete(context.Background(), d.ref("st-db")); err == nil || !strings.Contains(err.Error(), "provider") {
		t.Errorf("delete through the wrong provider: %v", err)
	}
}
