package oci

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/berth-dev/berth/manifest"
)

func medianMS(d []time.Duration) float64 {
	s := append([]time.Duration{}, d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[len(s)/2].Microseconds()) / 1000
}

// BenchmarkImageStart measures create+start of a crun container from an
// OCI image layout (the busybox image: 2 layers, ~2 MB) with a cold cache
// (first unpack) and from the cache; reports both and cold/cached.
func BenchmarkImageStart(b *testing.B) {
	img := busyboxImage(b)
	layoutDir := filepath.Join(b.TempDir(), "layout")
	lp, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		b.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "1"})); err != nil {
		b.Fatal(err)
	}
	d := realDriver(b, "crun")
	ctx := context.Background()
	run := func(name string) time.Duration {
		tg := target(name, &manifest.Instance{Image: "oci:" + layoutDir + ":1", Command: []string{"sleep", "100"}})
		start := time.Now()
		ref, err := d.Create(ctx, tg)
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Start(ctx, ref); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		if err := d.Delete(ctx, ref); err != nil {
			b.Fatal(err)
		}
		return took
	}
	for range b.N {
		var cold, warm []time.Duration
		for i := range 5 {
			d.images = newImageCache(b.TempDir())
			cold = append(cold, run(fmt.Sprintf("cold%d", i)))
			warm = append(warm, run(fmt.Sprintf("warm%d", i)))
		}
		c, w := medianMS(cold), medianMS(warm)
		b.ReportMetric(c, "first-unpack-ms")
		b.ReportMetric(w, "cached-ms")
		b.ReportMetric(c/w, "unpack/cached")
	}
}

// BenchmarkRootfsMode measures giving one instance its private writable
// rootfs from a cached image: an overlay mount vs a per-instance copy, for
// the busybox rootfs (~2 MB, 270 symlinks) and a 32 MB tree of 2000
// files. Reports milliseconds per instance and copy/overlay.
func BenchmarkRootfsMode(b *testing.B) {
	requireTool(b, "crun", "crun")
	big := filepath.Join(b.TempDir(), "big")
	for i := range 2000 {
		dir := filepath.Join(big, fmt.Sprintf("d%02d", i%50))
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), make([]byte, 16<<10), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	images := map[string]string{"busybox": busyboxRootfs(b), "32MB": big}
	for range b.N {
		for _, name := range []string{"busybox", "32MB"} {
			times := map[string][]time.Duration{}
			for _, mode := range []string{rootfsOverlay, rootfsCopy} {
				d := &Driver{cfg: Config{RootfsMode: mode}, log: discardLogger()}
				for i := range 5 {
					bundle := filepath.Join(b.TempDir(), fmt.Sprint(i))
					start := time.Now()
					got, err := d.prepareRootfs(bundle, images[name])
					times[mode] = append(times[mode], time.Since(start))
					if err != nil || got != mode {
						b.Fatalf("%s %s: got mode %s, %v", name, mode, got, err)
					}
					if err := removeBundle(bundle); err != nil {
						b.Fatal(err)
					}
				}
			}
			o, c := medianMS(times[rootfsOverlay]), medianMS(times[rootfsCopy])
			b.ReportMetric(o, name+"-overlay-ms")
			b.ReportMetric(c, name+"-copy-ms")
			b.ReportMetric(c/o, name+"-copy/overlay")
		}
	}
}
