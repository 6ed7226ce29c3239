// Package e2e runs the built berth binary against real backends: the LXC
// quickstart flow (up, ps, an in-place memory update, down), a rollback
// after a template fails mid-up, and the `make bench` comparison of berth
// with plain lxc-* shell loops.
package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testenv"
)

// berthBin is the berth binary built once for the package.
var berthBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	berthBin = filepath.Join(dir, "berth")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(goTool, "build", "-o", berthBin, "github.com/berth-dev/berth/cmd/berth").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building berth: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireLXC skips (loudly) without the lxc tools or root, and fails under
// CI=true where they must be present.
func requireLXC(t testing.TB) {
	t.Helper()
	why := ""
	for _, tool := range []string{"lxc-create", "lxc-start", "lxc-ls", "lxc-attach", "lxc-destroy", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			why = tool + " missing (apt-get install -y lxc iproute2)"
		}
	}
	if why == "" && os.Geteuid() != 0 {
		why = "real LXC tests need root"
	}
	if why != "" {
		testenv.Unavailable(t, "real LXC end-to-end test", why)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// env is a test's private world: lxcpath, state dir, bridge and the
// variables the stack files interpolate.
type env struct {
	t        testing.TB
	lxcpath  string
	stateDir string
	vars     map[string]string
	// project overrides the stack name (-p): container names are
	// host-wide in cgroups, and other test runs may share the machine.
	project string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	requireLXC(t)
	root := t.TempDir()
	e := &env{t: t, lxcpath: filepath.Join(root, "lxc"), stateDir: filepath.Join(root, "state"), vars: map[string]string{}}
	e.vars["LXCPATH"] = e.lxcpath
	t.Cleanup(func() { destroyAll(t, e.lxcpath) })
	return e
}

// withBridge names a fresh bridge (berth creates it) and a random /24 for
// static addresses; the bridge is deleted when the test ends.
func (e *env) withBridge() {
	br := "bre2e" + randHex(3)
	b := make([]byte, 1)
	rand.Read(b)
	e.vars["BRIDGE"] = br
	e.vars["SUBNET"] = fmt.Sprintf("10.231.%d", int(b[0])%250+1)
	e.t.Cleanup(func() { exec.Command("ip", "link", "del", br).Run() })
}

// berth runs the binary with the stack file and returns its combined
// output and exit code.
func (e *env) berth(stack string, args ...string) (string, int) {
	e.t.Helper()
	argv := []string{"-f", stack, "--state-dir", e.stateDir}
	if e.project != "" {
		argv = append(argv, "-p", e.project)
	}
	argv = append(argv, args...)
	cmd := exec.Command(berthBin, argv...)
	cmd.Env = append(os.Environ(), "BERTH_PROGRESS=plain")
	for k, v := range e.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if x, ok := err.(*exec.ExitError); ok {
			code = x.ExitCode()
		}
	}
	return out.String(), code
}

// mustBerth runs berth and fails the test on a non-zero exit.
func (e *env) mustBerth(stack string, args ...string) string {
	e.t.Helper()
	out, code := e.berth(stack, args...)
	if code != 0 {
		e.t.Fatalf("berth %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// containers lists the lxcpath with lxc-ls directly (not through berth).
func containers(t testing.TB, lxcpath string) []string {
	out, err := exec.Command("lxc-ls", "-P", lxcpath, "-1").CombinedOutput()
	if err != nil {
		t.Fatalf("lxc-ls: %v: %s", err, out)
	}
	return strings.Fields(string(out))
}

func destroyAll(t testing.TB, lxcpath string) {
	out, _ := exec.Command("lxc-ls", "-P", lxcpath, "-1").Output()
	for _, n := range strings.Fields(string(out)) {
		if o, err := exec.Command("lxc-destroy", "-P", lxcpath, "-n", n, "-f").CombinedOutput(); err != nil {
			t.Logf("cleanup %s: %v: %s", n, err, o)
		}
	}
}

func lxcValue(t testing.TB, lxcpath, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], append([]string{"-P", lxcpath, "-n", name}, args[1:]...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", args[0], name, err, out)
	}
	return strings.TrimSpace(string(out))
}

// dirEntries lists the names in dir (none when it is missing): what a
// test expects berth to have left behind in an lxcpath.
func dirEntries(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, x := range ents {
		names = append(names, x.Name())
	}
	return names
}
