package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/hostcmd"
	"github.com/berth-dev/berth/drivers/oci/internal/waiter"
	"github.com/berth-dev/berth/manifest"
)

// requireTool skips loudly when a host tool is missing, and fails under
// CI=true, where every tool must be installed.
func requireTool(t testing.TB, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing under CI=true: apt-get install -y %s", name, pkg)
		}
		t.Skipf("SKIPPED: %s not installed (apt-get install -y %s); this test drives the real runtime", name, pkg)
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("real %s tests need root under CI=true", name)
		}
		t.Skipf("SKIPPED: real %s tests need root", name)
	}
}

// busyboxRootfs builds (once per test binary) a root filesystem of
// busybox-static plus applet symlinks, as examples/mkrootfs.sh does.
func busyboxRootfs(t testing.TB) string {
	t.Helper()
	requireTool(t, "busybox", "busybox-static")
	dir := filepath.Join(sharedTestDir(t), "busybox-rootfs")
	if _, err := os.Stat(filepath.Join(dir, "etc/group")); err == nil {
		return dir
	}
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, _ := exec.LookPath("busybox")
	if err := copyFile(bb, filepath.Join(dir, "bin/busybox"), 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" {
			os.Symlink("busybox", filepath.Join(dir, "bin", applet))
		}
	}
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644)
	return dir
}

var testDirOnce string

// sharedTestDir is one directory for the whole test binary run (images and
// rootfs built once), removed by TestMain.
func sharedTestDir(t testing.TB) string {
	if testDirOnce == "" {
		d, err := os.MkdirTemp("", "berth-oci-test-")
		if err != nil {
			t.Fatal(err)
		}
		testDirOnce = d
	}
	return testDirOnce
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testDirOnce != "" {
		os.RemoveAll(testDirOnce)
	}
	os.Exit(code)
}

// realDriver makes a driver for runtime with a private root, and deletes
// every container in it when the test ends.
func realDriver(t testing.TB, runtime string) *Driver {
	t.Helper()
	requireTool(t, runtime, runtime)
	root := t.TempDir()
	d, err := New(Config{Runtime: runtime, Root: root, CacheDir: filepath.Join(sharedTestDir(t), "images")}, hostcmd.Local{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		obs, _ := d.Observe(ctx, "")
		for _, o := range obs {
			if err := d.Delete(ctx, o.Ref); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return d
}

func target(name string, inst *manifest.Instance) drivers.Target {
	inst.Name = name
	if inst.Backend == "" {
		inst.Backend = manifest.BackendCrun
	}
	spec, _ := json.Marshal(inst)
	return drivers.Target{
		Stack:      "t",
		Instance:   inst,
		ObjectName: "t-" + name,
		Owner:      drivers.Ownership{Stack: "t", Instance: name, SpecHash: "h-" + name, Spec: spec},
	}
}

func findObserved(t *testing.T, d *Driver, name string) drivers.ObservedInstance {
	t.Helper()
	obs, err := d.Observe(context.Background(), "t")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range obs {
		if o.Ref.Name == name {
			return o
		}
	}
	t.Fatalf("%s not observed in %+v", name, obs)
	return drivers.ObservedInstance{}
}

// TestRealLifecycle drives crun and runc for real: create, start, exec,
// logs, observe with ownership, stop (TERM ignored -> KILL), restart from
// the bundle, an exit code recorded by the waiter, delete.
func TestRealLifecycle(t *testing.T) {
	for _, rt := range []string{"crun", "runc"} {
		t.Run(rt, func(t *testing.T) {
			d := realDriver(t, rt)
			rootfs := busyboxRootfs(t)
			ctx := context.Background()

			web := target("web", &manifest.Instance{
				Image:       "dir:" + rootfs,
				Command:     []string{"sh", "-c", "echo hello from $GREETING; trap 'exit 0' TERM; while :; do sleep 1; done"},
				Environment: map[string]string{"GREETING": "berth"},
				Memory:      64 * manifest.MiB,
				CPUs:        0.5,
			})
			ref, err := d.Create(ctx, web)
			if err != nil {
				t.Fatal(err)
			}
			if o := findObserved(t, d, "t-web"); o.State != drivers.StateCreated || o.Owner == nil || o.Owner.Instance != "web" || o.Owner.SpecHash != "h-web" {
				t.Fatalf("after create: %+v owner %+v", o, o.Owner)
			}
			if _, err := d.Create(ctx, web); !errors.Is(err, drivers.ErrExists) {
				t.Fatalf("second create: want ErrExists, got %v", err)
			}
			if err := d.Start(ctx, ref); err != nil {
				t.Fatal(err)
			}
			if o := findObserved(t, d, "t-web"); o.State != drivers.StateRunning {
				t.Fatalf("after start: %+v", o)
			}
			var out, errOut bytes.Buffer
			code, err := d.Exec(ctx, ref, drivers.ExecRequest{Argv: []string{"sh", "-c", "echo $GREETING $X; hostname; exit 3"}, Env: map[string]string{"X": "y"}, Stdout: &out, Stderr: &errOut})
			if err != nil || code != 3 || out.String() != "berth y\nweb\n" {
				t.Fatalf("exec: code %d err %v out %q stderr %q", code, err, out.String(), errOut.String())
			}
			// memory and cpus change in place, in the live cgroup.
			if got := memoryLimit(t, d, "t-web"); got != 64<<20 {
				t.Errorf("live memory limit %d, want 64M", got)
			}
			next := *web.Instance
			next.Memory = 80 * manifest.MiB
			if err := d.Update(ctx, ref, target("web", &next), []string{"memory"}); err != nil {
				t.Fatal(err)
			}
			if got := memoryLimit(t, d, "t-web"); got != 80<<20 {
				t.Errorf("live memory limit after update %d, want 80M", got)
			}
			var logs bytes.Buffer
			waitFor(t, func() bool {
				logs.Reset()
				d.Logs(ctx, ref, false, &logs)
				return strings.Contains(logs.String(), "hello from berth")
			})
			if err := d.Stop(ctx, ref, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			if o := findObserved(t, d, "t-web"); o.State != drivers.StateStopped {
				t.Fatalf("after stop: %+v", o)
			}
			if _, err := d.Exec(ctx, ref, drivers.ExecRequest{Argv: []string{"true"}}); !errors.Is(err, drivers.ErrNotRunning) {
				t.Fatalf("exec in stopped: want ErrNotRunning, got %v", err)
			}
			// Restart recreates from the bundle.
			if err := d.Start(ctx, ref); err != nil {
				t.Fatal(err)
			}
			if o := findObserved(t, d, "t-web"); o.State != drivers.StateRunning {
				t.Fatalf("after restart: %+v", o)
			}
			if err := d.Delete(ctx, ref); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(d.bundleDir("t-web")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("bundle left behind: %v", err)
			}
			if err := d.Start(ctx, ref); !errors.Is(err, drivers.ErrNotFound) {
				t.Fatalf("start deleted: want ErrNotFound, got %v", err)
			}

			// A process that ends on its own is exited with its code.
			job := target("job", &manifest.Instance{Image: "dir:" + rootfs, Command: []string{"sh", "-c", "exit 7"}})
			jref, err := d.Create(ctx, job)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Start(ctx, jref); err != nil {
				t.Fatal(err)
			}
			var o drivers.ObservedInstance
			waitFor(t, func() bool { o = findObserved(t, d, "t-job"); return o.State == drivers.StateExited })
			if o.ExitCode == nil || *o.ExitCode != 7 {
				t.Fatalf("exit code: %+v", o)
			}
			// Stubborn PID 1 (no TERM handler): killed after the timeout.
			stub := target("stub", &manifest.Instance{Image: "dir:" + rootfs, Command: []string{"sleep", "1000"}})
			sref, err := d.Create(ctx, stub)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Start(ctx, sref); err != nil {
				t.Fatal(err)
			}
			if err := d.Stop(ctx, sref, 200*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			d.awaitExitRecord(ctx, "t-stub")
			rec := waiter.ReadExitRecord(filepath.Join(d.bundleDir("t-stub"), exitFileName))
			if rec == nil || rec.ExitCode != 137 || rec.Signal != "SIGKILL" {
				t.Fatalf("stub exit record: %+v", rec)
			}
		})
	}
}

// waitFor polls cond for up to 10 s (a bound, not a timing assertion).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition not met within 10s")
}

func rewriteJSON(path string, edit func(map[string]any)) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	edit(m)
	return writeJSONFile(path, m)
}

func removeFile(path string) error { return os.Remove(path) }

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestRealSameNameRace: parallel creates of one name give one container
// and ErrExists for the others, and the winner still starts (a loser must
// not clean up the winner's bundle).
func TestRealSameNameRace(t *testing.T) {
	d := realDriver(t, "crun")
	rootfs := busyboxRootfs(t)
	tg := target("race", &manifest.Instance{Image: "dir:" + rootfs, Command: []string{"sleep", "1000"}})
	errs := make(chan error, 3)
	for range 3 {
		go func() { _, err := d.Create(context.Background(), tg); errs <- err }()
	}
	ok := 0
	for range 3 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case !errors.Is(err, drivers.ErrExists):
			t.Errorf("racing create: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d creates succeeded, want 1", ok)
	}
	if err := d.Start(context.Background(), drivers.ObjectRef{Name: "t-race"}); err != nil {
		t.Fatal(err)
	}
	if o := findObserved(t, d, "t-race"); o.State != drivers.StateRunning {
		t.Fatalf("winner: %+v", o)
	}
}

// memoryLimit reads a running container's memory limit from its cgroup
// (v1 memory.limit_in_bytes or v2 memory.max).
func memoryLimit(t *testing.T, d *Driver, id string) int64 {
	t.Helper()
	st, err := d.state(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", st.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var file string
		switch {
		case strings.Contains(","+parts[1]+",", ",memory,"):
			file = filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes")
		case parts[0] == "0" && parts[1] == "" && !DetectHybridCgroups():
			file = filepath.Join("/sys/fs/cgroup", parts[2], "memory.max")
		default:
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return n
	}
	t.Fatalf("no memory cgroup for pid %d:\n%s", st.Pid, data)
	return 0
}

// TestRealRootfsIsolation: in both rootfs modes a container's writes stay
// in its bundle: the shared image directory is untouched, and a second
// container of the same image does not see them.
func TestRealRootfsIsolation(t *testing.T) {
	rootfs := busyboxRootfs(t)
	for _, mode := range []string{rootfsOverlay, rootfsCopy} {
		t.Run(mode, func(t *testing.T) {
			d := realDriver(t, "crun")
			d.cfg.RootfsMode = mode
			ctx := context.Background()
			var refs []drivers.ObjectRef
			for _, name := range []string{"a", "b"} {
				ref, err := d.Create(ctx, target(name, &manifest.Instance{Image: "dir:" + rootfs, Command: []string{"sleep", "1000"}}))
				if err != nil {
					t.Fatal(err)
				}
				if err := d.Start(ctx, ref); err != nil {
					t.Fatal(err)
				}
				refs = append(refs, ref)
			}
			if sc, err := readSidecar(d.bundleDir("t-a")); err != nil || sc.RootfsMode != mode {
				t.Fatalf("sidecar %+v %v, want mode %s", sc, err, mode)
			}
			code, err := d.Exec(ctx, refs[0], drivers.ExecRequest{Argv: []string{"sh", "-c", "echo mine > /etc/only-a && rm /bin/vi"}})
			if err != nil || code != 0 {
				t.Fatalf("write in a: %d %v", code, err)
			}
			if _, err := os.Stat(filepath.Join(rootfs, "etc/only-a")); err == nil {
				t.Error("the write reached the shared image directory")
			}
			if _, err := os.Lstat(filepath.Join(rootfs, "bin/vi")); err != nil {
				t.Error("the delete reached the shared image directory")
			}
			code, _ = d.Exec(ctx, refs[1], drivers.ExecRequest{Argv: []string{"sh", "-c", "test ! -e /etc/only-a && test -e /bin/vi"}})
			if code != 0 {
				t.Error("container b sees a's changes")
			}
		})
	}
}
