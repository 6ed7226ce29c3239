package lxc

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/manifest"
)

// TestCreateChurnsNoFile backs "Filesystem churn" in docs/backends/lxc.md:
// a create writes nothing into the lxcpath directory itself or the
// temporary directory, and the config and rcS lxc-create made (toolStub)
// keep their inodes, i.e. are edited in place rather than replaced (a
// replaced file frees an inode).
func TestCreateChurnsNoFile(t *testing.T) {
	old := geteuid
	geteuid = func() int { return 0 }
	t.Cleanup(func() { geteuid = old })
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	lxcpath := t.TempDir()
	d, err := New(Config{LXCPath: lxcpath, Provider: "local", Cgroup: CgroupV1, SwapAccounting: boolp(true)}, toolStub{})
	if err != nil {
		t.Fatal(err)
	}
	var inodes map[string]uint64
	stubCreated = func(dir string) {
		inodes = map[string]uint64{}
		for _, f := range []string{"config", "rootfs/etc/init.d/rcS"} {
			inodes[f] = inode(t, filepath.Join(dir, f))
		}
	}
	t.Cleanup(func() { stubCreated = nil })

	const name = "churn-web"
	ref, err := d.Create(context.Background(), drivers.Target{ObjectName: name, Stack: "churn",
		Instance: &manifest.Instance{Name: "web", Template: &manifest.Template{Type: "busybox"}},
		Owner:    drivers.Ownership{Stack: "churn", Instance: "web"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, lxcpath); !slices.Equal(got, []string{name}) {
		t.Errorf("after Create the lxcpath holds %v, want only %s", got, name)
	}
	if got := dirNames(t, tmp); len(got) != 0 {
		t.Errorf("after Create the temporary directory holds %v", got)
	}
	if got := dirNames(t, d.dir(name)); !slices.Equal(got, []string{"berth.json", "config", "rootfs"}) {
		t.Errorf("after Create the container directory holds %v", got)
	}
	for f, ino := range inodes {
		if now := inode(t, filepath.Join(d.dir(name), f)); now != ino {
			t.Errorf("%s was replaced (inode %d -> %d), not edited in place", f, ino, now)
		}
	}
	if _, err := d.readSidecar(ref.Name); err != nil {
		t.Errorf("no ownership record after Create: %v", err)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
