package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/internal/testenv"
)

// TestMakeDemoFromTrackedFiles runs the README's first command, `make
// demo`, in a copy of only the files git tracks (what a fresh clone has:
// no examples/rootfs, no bin/), and checks it ends with the demo's own
// "nothing left behind" check.
func TestMakeDemoFromTrackedFiles(t *testing.T) {
	requireLXC(t)
	for _, tool := range []string{"crun", "make", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, "make demo", tool+" missing (apt-get install -y "+tool+")")
		}
	}
	ls := exec.Command("git", "ls-files", "-z")
	ls.Dir = ".."
	list, err := ls.Output()
	if err != nil {
		testenv.Unavailable(t, "make demo", "not a git checkout: "+err.Error())
	}
	clone := t.TempDir()
	for _, f := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		src := filepath.Join("..", f)
		fi, err := os.Lstat(src)
		if err != nil {
			continue // deleted in the work tree, not yet committed
		}
		dst := filepath.Join(clone, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}

	lock, err := os.OpenFile("/tmp/berth-quickstart-demo.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	cmd := exec.Command("make", "demo", "GO="+filepath.Join(runtime.GOROOT(), "bin", "go"))
	cmd.Dir = clone
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("make demo in a fresh copy: %v\n%s", err, out.String())
	}
	for _, want := range []string{"quickstart-cache  running  healthy", "~ update in-place cache", "berth down left nothing behind"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("make demo output lacks %q:\n%s", want, out.String())
		}
	}
}
