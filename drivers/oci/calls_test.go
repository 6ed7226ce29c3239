package oci

import (
	"context"
	"os"
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

// countingCmder runs commands for real and records each argv, so tests can
// count the processes berth starts per container.
type countingCmder struct {
	mu    sync.Mutex
	calls [][]string
}

func (c *countingCmder) Command(ctx context.Context, name string, args ...string) hostcmd.Cmd {
	c.mu.Lock()
	c.calls = append(c.calls, append([]string{name}, args...))
	c.mu.Unlock()
	return hostcmd.Local{}.Command(ctx, name, args...)
}

// take returns the calls since the last take, each shortened to what
// identifies it: the runtime subcommand ("create" for a waiter launch,
// which runs the runtime's create) with the container id.
func (c *countingCmder) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, argv := range c.calls {
		out = append(out, summarize(argv))
	}
	c.calls = nil
	return out
}

func summarize(argv []string) string {
	if len(argv) > 2 && argv[0] == "sh" && argv[1] == "-c" {
		// The waiter launch: sh -c SCRIPT EXE oci-waiter ... -- RUNTIME ... create ... ID
		return "waiter " + summarize(argv[indexOf(argv, "--")+1:])
	}
	args := argv[1:]
	if len(args) >= 2 && args[0] == "--root" {
		args = args[2:]
	}
	var words []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--bundle" || a == "--pid-file" || a == "-r":
			i++
		case strings.HasPrefix(a, "-") && a != "-f":
		default:
			words = append(words, a)
		}
	}
	return filepath.Base(argv[0]) + " " + strings.Join(words, " ")
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// TestRealRuntimeCalls pins the processes berth starts per container on
// the path `berth up` and `berth down` take (see BenchmarkCrunUp20 in
// e2e): create = one waiter launch (which runs the runtime's create),
// start = one `start`, stop = one `kill` (the end is seen in the waiter's
// exit record, no `state` polls), delete = one `delete -f`; one `list` per
// Observe; `--version` only the first time a binary is seen.
func TestRealRuntimeCalls(t *testing.T) {
	for _, rt := range []string{"crun", "runc"} {
		t.Run(rt, func(t *testing.T) {
			requireTool(t, rt, rt)
			rootfs := busyboxRootfs(t)
			root := t.TempDir()
			cfg := Config{Runtime: rt, Root: root, CacheDir: filepath.Join(sharedTestDir(t), "images")}
			cmder := &countingCmder{}
			d, err := New(cfg, cmder)
			if err != nil {
				t.Fatal(err)
			}
			if got := cmder.take(); !reflect.DeepEqual(got, []string{rt + " "}) {
				t.Errorf("first New ran %q, want one --version", got)
			}
			if d, err = New(cfg, cmder); err != nil {
				t.Fatal(err)
			}
			if got := cmder.take(); len(got) != 0 {
				t.Errorf("second New ran %q, want nothing (cached version)", got)
			}
			ctx := context.Background()
			names := []string{"a", "b"}
			t.Cleanup(func() {
				for _, n := range names {
					d.Delete(ctx, drivers.ObjectRef{Backend: rt, Name: "t-" + n})
				}
			})
			for _, n := range names {
				tg := target(n, &manifest.Instance{Backend: rt, Image: "dir:" + rootfs,
					Command: []string{"sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"}})
				ref, err := d.Create(ctx, tg)
				if err != nil {
					t.Fatal(err)
				}
				if err := d.Start(ctx, ref); err != nil {
					t.Fatal(err)
				}
				want := []string{"waiter " + rt + " create t-" + n, rt + " start t-" + n}
				if got := cmder.take(); !reflect.DeepEqual(got, want) {
					t.Errorf("create+start %s ran %q, want %q", n, got, want)
				}
			}
			obs, err := d.Observe(ctx, "t")
			if err != nil || len(obs) != 2 {
				t.Fatalf("observe: %v %+v", err, obs)
			}
			if got := cmder.take(); !reflect.DeepEqual(got, []string{rt + " list -f json"}) {
				t.Errorf("observe ran %q, want one list", got)
			}
			for _, n := range names {
				ref := drivers.ObjectRef{Backend: rt, Name: "t-" + n}
				if err := d.Stop(ctx, ref, 5*time.Second); err != nil {
					t.Fatal(err)
				}
				if err := d.Delete(ctx, ref); err != nil {
					t.Fatal(err)
				}
				want := []string{rt + " kill t-" + n + " TERM", rt + " delete -f t-" + n}
				if got := cmder.take(); !reflect.DeepEqual(got, want) {
					t.Errorf("stop+delete %s ran %q, want %q", n, got, want)
				}
				if _, err := os.Stat(d.bundleDir("t-" + n)); !os.IsNotExist(err) {
					t.Errorf("bundle of %s left behind: %v", n, err)
				}
			}
		})
	}
}

// TestVersionCache: `--version` runs once per runtime binary; a changed
// binary (other size or mtime) is asked again, and the cached output still
// tells crun from runc.
func TestVersionCache(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "myruntime")
	write := func(version string) {
		script := "#!/bin/sh\necho '" + version + "'\n"
		if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{Runtime: bin, Backend: "crun", Root: filepath.Join(dir, "root")}
	cmder := &countingCmder{}
	for i, step := range []struct {
		version    string // rewrite the binary first ("" = leave it)
		wantCalls  int
		wantFlavor string
	}{
		{"crun version 1.8.1", 1, "crun"},
		{"", 0, "crun"},
		{"runc version 1.1.5 (changed binary)", 1, "runc"},
		{"", 0, "runc"},
	} {
		if step.version != "" {
			write(step.version)
		}
		d, err := New(cfg, cmder)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := len(cmder.take()); got != step.wantCalls {
			t.Errorf("step %d: %d runtime calls, want %d", i, got, step.wantCalls)
		}
		if d.flavor != step.wantFlavor {
			t.Errorf("step %d: flavor %q, want %q", i, d.flavor, step.wantFlavor)
		}
	}
	// A garbled cache is ignored, not trusted.
	os.WriteFile(filepath.Join(cfg.Root, "runtime-crun.json"), []byte("{"), 0o600)
	if _, err := New(cfg, cmder); err != nil {
		t.Fatal(err)
	}
	if got := len(cmder.take()); got != 1 {
		t.Errorf("garbled cache: %d runtime calls, want 1", got)
	}
}

// TestLiveFieldsFromSidecar: berth.json carries the memory and CPU limits
// written into config.json, and Observe's live fields come from it; a
// sidecar without them (older berth) falls back to config.json.
func TestLiveFieldsFromSidecar(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "b")
	os.MkdirAll(bundle, 0o700)
	d := &Driver{flavor: manifest.BackendCrun, stateDir: dir}
	tg := target("web", &manifest.Instance{Command: []string{"sh"}, Memory: 64 * manifest.MiB, CPUs: 0.5})
	if err := d.writeConfig(bundle, tg, &Image{Rootfs: dir}, &Sidecar{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"memory": `"64M"`, "cpus": `0.5`}
	check := func(what string, sc *Sidecar) {
		t.Helper()
		live := liveFields(bundle, sc)
		got := map[string]string{}
		for k, v := range live {
			got[k] = string(v)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: live %v, want %v", what, got, want)
		}
	}
	sc, err := readSidecar(bundle)
	if err != nil || sc.Resources == nil {
		t.Fatalf("sidecar %+v, %v", sc, err)
	}
	check("from config.json (no sidecar resources)", &Sidecar{})
	os.Rename(filepath.Join(bundle, configFileName), filepath.Join(dir, "moved.json"))
	check("from berth.json alone", sc)
	// No limits: an empty record, which still means "recorded".
	tg = target("web", &manifest.Instance{Command: []string{"sh"}})
	if err := d.writeConfig(bundle, tg, &Image{Rootfs: dir}, &Sidecar{}); err != nil {
		t.Fatal(err)
	}
	if sc, _ = readSidecar(bundle); sc.Resources == nil || liveFields(bundle, sc) != nil {
		t.Errorf("no limits: resources %+v, live %v", sc.Resources, liveFields(bundle, sc))
	}
}
