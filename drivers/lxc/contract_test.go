package lxc

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/drivertest"
	"github.com/berth-dev/berth/manifest"
)

// TestContract runs the shared driver contract suite against real LXC
// containers in a private lxcpath.
func TestContract(t *testing.T) {
	requireLXC(t)
	stack := uniqueName("ct") // container names are host-wide in cgroups
	drivertest.Run(t, drivertest.Harness{
		Stack: stack,
		New:   func(t *testing.T) drivers.Driver { return realDriver(t, Config{}) },
		Running: func(name string) *manifest.Instance {
			return &manifest.Instance{Name: name, Backend: "lxc", Memory: 128 * manifest.MiB,
				Template: &manifest.Template{Type: "busybox"}}
		},
		MakeForeign: func(t *testing.T, d drivers.Driver, name string) {
			lxcpath := d.(*Driver).LXCPath()
			base := filepath.Join(t.TempDir(), "base.conf")
			os.WriteFile(base, []byte("lxc.net.0.type = empty\n"), 0o644)
			if out, err := exec.Command("lxc-create", "-P", lxcpath, "-n", name, "-t", "busybox", "-f", base).CombinedOutput(); err != nil {
				t.Fatalf("lxc-create %s: %v: %s", name, err, out)
			}
			t.Cleanup(func() { exec.Command("lxc-destroy", "-P", lxcpath, "-n", name, "-f").Run() })
		},
		UpdateInPlace: func(inst *manifest.Instance) string {
			inst.Memory = 192 * manifest.MiB
			return "memory"
		},
	})
}
