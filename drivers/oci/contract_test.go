package oci

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/drivertest"
	"github.com/berth-dev/berth/manifest"
)

// TestContract runs the shared driver contract suite against real crun
// and runc containers.
func TestContract(t *testing.T) {
	for _, rt := range []string{"crun", "runc"} {
		t.Run(rt, func(t *testing.T) {
			requireTool(t, rt, rt)
			rootfs := busyboxRootfs(t)
			drivertest.Run(t, drivertest.Harness{
				New:   func(t *testing.T) drivers.Driver { return realDriver(t, rt) },
				Stack: "ct",
				Running: func(name string) *manifest.Instance {
					return &manifest.Instance{
						Name: name, Backend: rt, Image: "dir:" + rootfs, Memory: 64 * manifest.MiB,
						Command: []string{"sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"},
					}
				},
				Exiting: func(t *testing.T, d drivers.Driver, name string, code int) *manifest.Instance {
					return &manifest.Instance{
						Name: name, Backend: rt, Image: "dir:" + rootfs,
						Command: []string{"sh", "-c", fmt.Sprintf("sleep 0.2; exit %d", code)},
					}
				},
				MakeForeign: func(t *testing.T, d drivers.Driver, name string) {
					makeForeign(t, d.(*Driver), name, rootfs)
				},
				UpdateInPlace: func(inst *manifest.Instance) string {
					inst.Memory = 96 * manifest.MiB
					return "memory"
				},
			})
		})
	}
}

// makeForeign creates a container by hand in the driver's state directory:
// a bundle outside berth's bundle directory, no berth.json, no berth
// annotations.
func makeForeign(t *testing.T, d *Driver, name, rootfs string) {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "foreign")
	tg := target("foreign", &manifest.Instance{Image: "dir:" + rootfs, Command: []string{"sleep", "100000"}})
	if err := d.writeBundle(bundle, tg, &Image{Ref: "dir:" + rootfs, Rootfs: rootfs}); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(bundle, configFileName)
	// Strip the ownership: a plain container someone made by hand.
	if err := rewriteJSON(spec, func(m map[string]any) { delete(m, "annotations") }); err != nil {
		t.Fatal(err)
	}
	if err := removeFile(filepath.Join(bundle, sidecarFileName)); err != nil {
		t.Fatal(err)
	}
	if err := d.createContainer(context.Background(), name, bundle); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.run(context.Background(), name, "delete", "-f", name)
		removeBundle(bundle)
	})
}
