package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/oci/internal/waiter"
	"github.com/berth-dev/berth/manifest"
)

// tarDir packs a directory as a layer tarball (regular files, dirs,
// symlinks).
func tarDir(t testing.TB, dir string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			link, _ = os.Readlink(p)
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = rel
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	return b.Bytes()
}

// busyboxImage is the busybox rootfs as a two-layer OCI image whose
// config (Cmd, Env, WorkingDir, User) the container must honour; the
// second layer whites out /bin/vi.
func busyboxImage(t testing.TB) v1.Image {
	rootfs := busyboxRootfs(t)
	return ociImage(t, v1.Config{
		Cmd:        []string{"sh", "-c", "echo from-image $FROM_IMAGE $MODE; pwd; id -u; test -e /bin/vi || echo vi-gone"},
		Env:        []string{"PATH=/bin", "FROM_IMAGE=1", "MODE=image"},
		WorkingDir: "/tmp",
		User:       "nobody",
	}, tarDir(t, rootfs), tarOf(t, file("bin/.wh.vi", "")))
}

// TestRealImages runs containers from an OCI image layout and from a
// loopback registry with crun and runc: the image config supplies the
// command, environment, working directory and user under the instance's
// overrides, and whiteouts apply.
func TestRealImages(t *testing.T) {
	img := busyboxImage(t)
	layoutDir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "1.0"})); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/berth/busybox:1.0"
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	for _, rt := range []string{"crun", "runc"} {
		t.Run(rt, func(t *testing.T) {
			d := realDriver(t, rt)
			d.images = newImageCache(t.TempDir()) // a cold cache: really pull and unpack
			ctx := context.Background()
			for _, c := range []struct{ name, image string }{{"layout", "oci:" + layoutDir + ":1.0"}, {"registry", ref}} {
				tg := target(c.name, &manifest.Instance{Image: c.image, Environment: map[string]string{"MODE": "instance"}})
				cref, err := d.Create(ctx, tg)
				if err != nil {
					t.Fatal(err)
				}
				if err := d.Start(ctx, cref); err != nil {
					t.Fatal(err)
				}
				var o drivers.ObservedInstance
				waitFor(t, func() bool { o = findObserved(t, d, cref.Name); return o.State == drivers.StateExited })
				var logs bytes.Buffer
				d.Logs(ctx, cref, false, &logs)
				if want := "from-image 1 instance\n/tmp\n65534\nvi-gone\n"; logs.String() != want || o.ExitCode == nil || *o.ExitCode != 0 {
					t.Errorf("%s: logs %q (want %q), exit %v", c.name, logs.String(), want, o.ExitCode)
				}
			}
		})
	}
}

// TestRealStopSignal: an image's StopSignal is what Stop sends first (the
// process ignores SIGTERM and exits 0 on SIGUSR1; a SIGTERM-then-SIGKILL
// stop would record 137).
func TestRealStopSignal(t *testing.T) {
	rootfs := busyboxRootfs(t)
	img := ociImage(t, v1.Config{
		Cmd:        []string{"sh", "-c", "trap 'exit 0' USR1; trap '' TERM; echo ready; sleep 100000 & wait"},
		StopSignal: "SIGUSR1",
	}, tarDir(t, rootfs))
	layoutDir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	for _, rt := range []string{"crun", "runc"} {
		t.Run(rt, func(t *testing.T) {
			d := realDriver(t, rt)
			ctx := context.Background()
			ref, err := d.Create(ctx, target("sig", &manifest.Instance{Image: "oci:" + layoutDir}))
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Start(ctx, ref); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { // traps installed
				var b bytes.Buffer
				d.Logs(ctx, ref, false, &b)
				return strings.Contains(b.String(), "ready")
			})
			if err := d.Stop(ctx, ref, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			d.awaitExitRecord(ctx, ref.Name)
			rec := waiter.ReadExitRecord(filepath.Join(d.bundleDir(ref.Name), exitFileName))
			if rec == nil || rec.ExitCode != 0 {
				t.Fatalf("exit record %+v, want 0 (stopped by SIGUSR1)", rec)
			}
		})
	}
}
