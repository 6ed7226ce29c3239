package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/drivers/oci"
	"github.com/berth-dev/berth/internal/testenv"
)

// requireRuntime skips (loudly) without the OCI runtime, busybox or root,
// and fails under CI=true where they must be present.
func requireRuntime(t testing.TB, runtime string) {
	t.Helper()
	why := ""
	for _, tool := range []string{runtime, "busybox", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			why = tool + " missing (apt-get install -y " + runtime + " busybox-static util-linux)"
		}
	}
	if why == "" && os.Geteuid() != 0 {
		why = "real " + runtime + " tests need root"
	}
	if why != "" {
		testenv.Unavailable(t, "real "+runtime+" end-to-end test", why)
	}
}

// mkrootfs builds the busybox rootfs with examples/mkrootfs.sh.
func mkrootfs(t testing.TB, dir string) string {
	t.Helper()
	rootfs := filepath.Join(dir, "rootfs")
	if out, err := exec.Command("sh", "../examples/mkrootfs.sh", rootfs).CombinedOutput(); err != nil {
		t.Fatalf("mkrootfs.sh: %v\n%s", err, out)
	}
	return rootfs
}

// crunStopsOnTerm is the containers' process: PID 1 with a TERM handler,
// so a graceful stop is quick for berth and the scripts alike.
var crunStopsOnTerm = []string{"sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"}

func crunBenchStack(t testing.TB, dir, name, rootfs string, n int) string {
	var b strings.Builder
	cmd, _ := json.Marshal(crunStopsOnTerm)
	fmt.Fprintf(&b, "version: 1\nname: %s\ninstances:\n", name)
	for i := range n {
		fmt.Fprintf(&b, "  c%02d:\n    backend: crun\n    image: dir:%s\n    command: %s\n    stop_grace_period: 5s\n", i, rootfs, cmd)
	}
	p := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// crunTemplate writes the config.json the shell contenders copy into each
// bundle (outside the timing): the one berth itself writes
// (oci.BundleConfig: same namespaces, capabilities, seccomp profile,
// process), with root.path "rootfs" relative to the bundle.
func crunTemplate(t testing.TB, path string, minimal bool) {
	data, err := oci.BundleConfig("crun", "rootfs", crunStopsOnTerm)
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	spec["root"].(map[string]any)["path"] = "rootfs"
	if minimal {
		// What a hand-written config would often be: no seccomp filter,
		// which crun compiles at every create (about 20 ms here).
		delete(spec["linux"].(map[string]any), "seccomp")
	}
	data, _ = json.MarshalIndent(spec, "", "  ")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// crunGraceMicros is the stop grace period of the benchmark's instances
// (stop_grace_period: 5s) for the scripts' TERM-then-KILL loop.
const crunGraceMicros = 5000000

// crunShell returns the per-container up and down steps berth performs,
// written as a user would script them, doing the same work for the same
// result:
//
//   - up: a bundle directory with a private writable root filesystem (an
//     overlay over the shared rootfs, as berth mounts) and config.json
//     (copied from $C: berth generates it), create with stdout/stderr to a
//     log file in the bundle, start. On a hybrid cgroup host create runs in
//     a private mount namespace with the cgroup2 mount detached (util-linux
//     unshare makes the namespace private first; the host's mount is never
//     touched).
//   - down: SIGTERM, wait for the process to end, SIGKILL after the same
//     5 s grace period berth uses (bash's EPOCHREALTIME, no extra
//     process), delete -f, unmount the overlay, remove the bundle.
func crunShell(hybrid bool) (up, down string) {
	create := `crun --root "$R" create --bundle "$B/$1" "$1"`
	if hybrid {
		create = `unshare --mount --propagation private sh -c 'umount -l /sys/fs/cgroup/unified && exec crun --root "$R" create --bundle "$B/$1" "$1"' _ "$1"`
	}
	up = `mkdir "$B/$1" "$B/$1/upper" "$B/$1/work" "$B/$1/rootfs" && cp "$C" "$B/$1/config.json" && ` +
		`mount -t overlay overlay -o "lowerdir=$L,upperdir=$B/$1/upper,workdir=$B/$1/work" "$B/$1/rootfs" && ` +
		create + ` </dev/null >"$B/$1/log" 2>&1 && crun --root "$R" start "$1"`
	down = fmt.Sprintf(`crun --root "$R" kill "$1" TERM; t=$(( ${EPOCHREALTIME/./} + %d )); `+
		`until crun --root "$R" state "$1" | grep -q '"stopped"'; do `+
		`if (( ${EPOCHREALTIME/./} > t )); then crun --root "$R" kill "$1" KILL; t=$(( t + %d )); fi; sleep 0.01; done; `+
		`crun --root "$R" delete -f "$1" && umount "$B/$1/rootfs" && rm -rf "$B/$1"`, crunGraceMicros, crunGraceMicros)
	return up, down
}

// timeCrunShell runs script with R (runtime state dir), B (bundles), C
// (config.json template) and L (the shared rootfs) set; returns its wall
// time.
func timeCrunShell(b *testing.B, vars []string, script string) time.Duration {
	b.Helper()
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), vars...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("script failed: %v\n%s\n%s", err, script, out)
	}
	return time.Since(start)
}

func crunCount(t testing.TB, stateDir string) int {
	out, err := exec.Command("crun", "--root", stateDir, "list", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("crun list: %v: %s", err, out)
	}
	return len(strings.Fields(string(out)))
}

// BenchmarkCrunUp20 compares `berth up`/`down` of 20 crun containers at
// --parallel 4 with the same per-container work done by shell scripts (see
// crunShell: the same runtime commands on the same config.json, the same
// private overlay rootfs, the same TERM / 5 s grace / KILL stop, the same
// unmount and bundle removal) in a sequential loop and under `xargs -P4`.
// Targets: berth/seq < 1, berth/xargs <= 1.1. berth/xargs-noseccomp is for
// reference only: the xargs script with a config.json without seccomp
// filter, a cheaper container than the one berth makes.
//
// Fairness: the scripts used to get ready-made bundles whose root.path was
// the one shared rootfs (20 containers writing into one directory) and
// left their bundles behind, while berth mounted a private overlay per
// container at up and unmounted and removed it at down; now both do that
// work, inside the timing. The scripts copy config.json where berth
// generates it, and skip what only berth does: its own start (stack file,
// lock, journal, `crun --version` unless cached, one `crun list`) and the
// waiter (a re-exec of berth through sh) that records each container's
// exit code.
//
// The machine is shared and noisy: after one uncounted warm-up round, the
// contenders run interleaved (the order rotates every round) for
// crunRounds rounds; each ratio is the median over rounds of berth's time
// divided by the contender's time in the same round, so a load change
// between rounds cancels out.
func BenchmarkCrunUp20(b *testing.B) {
	requireRuntime(b, "crun")
	hybrid := oci.DetectHybridCgroups()
	up, down := crunShell(hybrid)
	loop := func(body string, list []string) string {
		return "set -e; f() { " + body + "; }; for n in " + strings.Join(list, " ") + "; do f \"$n\"; done"
	}
	par := func(body string, list []string) string {
		return "printf '%s\\n' " + strings.Join(list, " ") + " | xargs -P4 -I{} bash -c '" + strings.ReplaceAll(body, "'", `'\''`) + "' _ {}"
	}
	for range b.N {
		root := b.TempDir()
		rootfs := mkrootfs(b, root)
		bundles := filepath.Join(root, "bundles")
		if err := os.MkdirAll(bundles, 0o755); err != nil {
			b.Fatal(err)
		}
		ociRoot := filepath.Join(root, "berth-oci")
		berthState := filepath.Join(ociRoot, "state", "crun")
		e := &env{t: b, stateDir: filepath.Join(root, "state"), vars: map[string]string{"BERTH_OCI_ROOT": ociRoot}}
		b.Cleanup(func() { crunCleanup(root) })
		crunTemplate(b, filepath.Join(root, "config.json"), false)
		crunTemplate(b, filepath.Join(root, "config-noseccomp.json"), true)

		type result struct{ up, down []time.Duration }
		res := map[string]*result{"seq": {}, "xargs": {}, "noseccomp": {}, "berth": {}}
		var noops []time.Duration
		names := func(prefix string) []string {
			var s []string
			for i := range benchN {
				s = append(s, fmt.Sprintf("%s-%02d", prefix, i))
			}
			return s
		}
		script := func(kind string, round int) {
			list := names(fmt.Sprintf("%s%d", kind[:1], round+1))
			state := filepath.Join(root, kind+"-state")
			tmpl := filepath.Join(root, "config.json")
			if kind == "noseccomp" {
				tmpl = filepath.Join(root, "config-noseccomp.json")
			}
			vars := []string{"R=" + state, "B=" + bundles, "C=" + tmpl, "L=" + rootfs}
			run := par
			if kind == "seq" {
				run = loop
			}
			u := timeCrunShell(b, vars, run(up, list))
			if n := crunCount(b, state); n != benchN {
				b.Fatalf("%s script made %d containers", kind, n)
			}
			d := timeCrunShell(b, vars, run(down, list))
			if n := crunCount(b, state); n != 0 {
				b.Fatalf("%s script left %d containers", kind, n)
			}
			if left, _ := os.ReadDir(bundles); len(left) != 0 {
				b.Fatalf("%s script left %d bundles", kind, len(left))
			}
			if round >= 0 {
				res[kind].up, res[kind].down = append(res[kind].up, u), append(res[kind].down, d)
			}
		}
		berth := func(round int) {
			stack := crunBenchStack(b, root, fmt.Sprintf("b%d", round+1), rootfs, benchN)
			start := time.Now()
			e.mustBerth(stack, "up", "--yes", "--parallel", "4")
			u := time.Since(start)
			if n := crunCount(b, berthState); n != benchN {
				b.Fatalf("berth up made %d containers, want %d", n, benchN)
			}
			// berth's fixed cost: an up with nothing to do (start, stack
			// file, lock, journal, Observe, plan).
			start = time.Now()
			e.mustBerth(stack, "up", "--yes", "--parallel", "4")
			noop := time.Since(start)
			start = time.Now()
			e.mustBerth(stack, "down", "--yes", "--parallel", "4")
			d := time.Since(start)
			if n := crunCount(b, berthState); n != 0 {
				b.Fatalf("berth down left %d containers", n)
			}
			if round >= 0 {
				res["berth"].up, res["berth"].down = append(res["berth"].up, u), append(res["berth"].down, d)
				noops = append(noops, noop)
			}
		}
		order := []string{"seq", "xargs", "noseccomp", "berth"}
		// Round -1 warms the page cache (berth binary, crun, rootfs) and is
		// not counted.
		for round := -1; round < crunRounds; round++ {
			for i := range order {
				kind := order[(i+round+1)%len(order)]
				if kind == "berth" {
					berth(round)
				} else {
					script(kind, round)
				}
			}
		}
		total := func(kind string) []time.Duration {
			r := res[kind]
			t := make([]time.Duration, len(r.up))
			for i := range r.up {
				t[i] = r.up[i] + r.down[i]
			}
			return t
		}
		for _, k := range []string{"berth", "seq", "xargs"} {
			b.ReportMetric(median(res[k].up), k+"-up-s")
			b.ReportMetric(median(res[k].down), k+"-down-s")
		}
		b.ReportMetric(median(noops), "berth-noop-up-s")
		bt := total("berth")
		ratios := []struct {
			name       string
			num, den   []time.Duration
			ratio, max float64
		}{
			{name: "berth/seq-up", num: res["berth"].up, den: res["seq"].up, max: 1},
			{name: "berth/xargs-up", num: res["berth"].up, den: res["xargs"].up, max: 1.1},
			{name: "berth/seq-down", num: res["berth"].down, den: res["seq"].down, max: 1},
			{name: "berth/xargs-down", num: res["berth"].down, den: res["xargs"].down, max: 1.1},
			{name: "berth/seq", num: bt, den: total("seq"), max: 1},
			{name: "berth/xargs", num: bt, den: total("xargs"), max: 1.1},
			{name: "berth/xargs-noseccomp", num: bt, den: total("noseccomp"), max: 1e9}, // reference only
		}
		for _, r := range ratios {
			ratio := medianRatio(r.num, r.den)
			b.ReportMetric(ratio, r.name)
			if ratio > r.max {
				b.Logf("TARGET MISSED: %s = %.2f (target <= %.2f)", r.name, ratio, r.max)
			}
		}
	}
}

// crunRounds is how many interleaved rounds BenchmarkCrunUp20 runs (about
// 3 s each on the 2-core machine).
const crunRounds = 7

// medianRatio is the median over rounds of num[i]/den[i].
func medianRatio(num, den []time.Duration) float64 {
	r := make([]float64, len(num))
	for i := range num {
		r[i] = num[i].Seconds() / den[i].Seconds()
	}
	sort.Float64s(r)
	if len(r) == 0 {
		return 0
	}
	return r[len(r)/2]
}

func median(d []time.Duration) float64 {
	s := append([]time.Duration{}, d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2].Seconds()
}

// crunCleanup deletes every container left in the benchmark's state
// directories (after a failure).
func crunCleanup(root string) {
	dirs, _ := filepath.Glob(filepath.Join(root, "*-state"))
	dirs = append(dirs, filepath.Join(root, "berth-oci", "state", "crun"))
	for _, r := range dirs {
		for _, id := range strings.Fields(mustOut(exec.Command("crun", "--root", r, "list", "-q"))) {
			exec.Command("crun", "--root", r, "delete", "-f", id).Run()
		}
	}
	mounts, _ := filepath.Glob(filepath.Join(root, "berth-oci", "bundles", "crun", "*", "rootfs"))
	scripts, _ := filepath.Glob(filepath.Join(root, "bundles", "*", "rootfs"))
	mounts = append(mounts, scripts...)
	for _, m := range mounts {
		exec.Command("umount", "-l", m).Run()
	}
}

func mustOut(cmd *exec.Cmd) string {
	out, _ := cmd.Output()
	return string(out)
}
