package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-dev/berth/drivers/hostcmd"
	"github.com/klauspost/compress/zstd"
)

// entry is one tar member of a synthetic layer.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func file(name, body string) entry {
	return entry{name: name, body: body, typ: tar.TypeReg, mode: 0o644}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, to string) entry {
	return entry{name: name, link: to, typ: tar.TypeSymlink, mode: 0o777}
}
func hardlink(name, to string) entry {
	return entry{name: name, link: to, typ: tar.TypeLink, mode: 0o644}
}

func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body))}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.body != "" {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return b.Bytes()
}

// tree lists a directory as "path" (dir/), "path=body" (file) and
// "path->target" (symlink) lines, sorted.
func tree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out = append(out, rel+"->"+l)
		case fi.IsDir():
			out = append(out, rel+"/")
		default:
			b, _ := os.ReadFile(p)
			out = append(out, rel+"="+string(b))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func applyAll(t *testing.T, layers ...[]byte) (string, error) {
	t.Helper()
	dst := t.TempDir()
	root, err := os.OpenRoot(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, l := range layers {
		if err := applyLayer(root, bytes.NewReader(l)); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

var (
	baseLayer = []entry{
		dir("etc/"), file("etc/passwd", "root"), file("etc/motd", "hi"),
		dir("opt/"), dir("opt/app/"), file("opt/app/old", "old"), dir("opt/app/sub/"), file("opt/app/sub/deep", "deep"),
		file("keep", "k"), symlink("bin", "usr/bin"), dir("usr/"), dir("usr/bin/"), file("usr/bin/tool", "t"),
	}
	// The opaque marker comes AFTER this layer's own entry in opt/app: it
	// must hide only the lower layer's content.
	topLayer = []entry{
		file("etc/.wh.motd", ""), dir("opt/app/"), file("opt/app/new", "new"), file("opt/app/.wh..wh..opq", ""),
		file("keep", "k2"), hardlink("keep2", "keep"), file("bin/viasymlink", "v"),
	}
)

// TestApplyLayerWhiteouts checks layer order, .wh. deletes, opaque
// directories (whatever the entry order), hard links and writes through
// in-root symlinks.
func TestApplyLayerWhiteouts(t *testing.T) {
	dst, err := applyAll(t, tarOf(t, baseLayer...), tarOf(t, topLayer...))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"bin->usr/bin", "etc/", "etc/passwd=root", "keep2=k2", "keep=k2",
		"opt/", "opt/app/", "opt/app/new=new", "usr/", "usr/bin/", "usr/bin/tool=t", "usr/bin/viasymlink=v",
	}
	if got := tree(t, dst); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestApplyLayerRejectsTraversal: names with "..", hard links out, and
// writes through symlinks that leave the root all fail, and nothing lands
// outside.
func TestApplyLayerRejectsTraversal(t *testing.T) {
	outside := t.TempDir()
	cases := []struct {
		name   string
		layers [][]byte
	}{
		{"dotdot", [][]byte{tarOf(t, file("../escape", "x"))}},
		{"dotdot-inner", [][]byte{tarOf(t, file("a/../../escape", "x"))}},
		{"hardlink-out", [][]byte{tarOf(t, hardlink("h", "../../etc/passwd"))}},
		{"abs-symlink", [][]byte{tarOf(t, symlink("esc", outside)), tarOf(t, file("esc/escape", "x"))}},
		{"rel-symlink", [][]byte{tarOf(t, symlink("esc", "../../../../../../.."+outside)), tarOf(t, file("esc/escape", "x"))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := applyAll(t, c.layers...)
			if err == nil {
				t.Fatal("unpacked without error")
			}
			if _, serr := os.Stat(filepath.Join(outside, "escape")); serr == nil {
				t.Fatal("a file landed outside the root")
			}
		})
	}
	if _, err := applyAll(t, tarOf(t, file("../x", ""))); !errors.Is(err, errTraversal) {
		t.Errorf("dotdot: want errTraversal, got %v", err)
	}
}

// ociImage builds an image of the two layers with an OCI config.
func ociImage(t testing.TB, cfg v1.Config, layers ...[]byte) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, l := range layers {
		data := l
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
			tarball.WithMediaType(types.OCILayer))
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			t.Fatal(err)
		}
	}
	img, err := mutate.Config(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

var testImageConfig = v1.Config{
	Entrypoint: []string{"/bin/entry"}, Cmd: []string{"serve"}, Env: []string{"PATH=/bin", "FROM_IMAGE=1"},
	WorkingDir: "/opt", User: "1000:1000",
}

// TestResolveLayout unpacks an OCI image layout by tag into the cache,
// once, and reads the image config.
func TestResolveLayout(t *testing.T) {
	dirPath := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(dirPath, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img := ociImage(t, testImageConfig, tarOf(t, baseLayer...), tarOf(t, topLayer...))
	other := ociImage(t, v1.Config{Cmd: []string{"x"}}, tarOf(t, file("only", "other")))
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(other, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "latest"})); err != nil {
		t.Fatal(err)
	}
	cache := newImageCache(t.TempDir())
	got, err := cache.Resolve(context.Background(), "oci:"+dirPath+":v1", "")
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	if got.Digest != digest.String() {
		t.Errorf("digest %s, want %s", got.Digest, digest)
	}
	if got.Config.User != "1000:1000" || got.Config.WorkingDir != "/opt" || got.Config.Entrypoint[0] != "/bin/entry" || got.Config.Cmd[0] != "serve" {
		t.Errorf("config %+v", got.Config)
	}
	if b, _ := os.ReadFile(filepath.Join(got.Rootfs, "opt/app/new")); string(b) != "new" {
		t.Errorf("rootfs not unpacked: %v", tree(t, got.Rootfs))
	}
	if _, err := os.Stat(filepath.Join(got.Rootfs, "etc/motd")); err == nil {
		t.Error("whiteout etc/.wh.motd ignored")
	}
	// Relative path against the stack dir, no tag = "latest".
	latest, err := cache.Resolve(context.Background(), "oci:layout", filepath.Dir(dirPath))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(latest.Rootfs, "only")); string(b) != "other" {
		t.Errorf("latest: %v", tree(t, latest.Rootfs))
	}
	// Cached: a second resolve does not unpack again (the marker survives).
	os.WriteFile(filepath.Join(got.Rootfs, "marker"), nil, 0o644)
	again, err := cache.Resolve(context.Background(), "oci:"+dirPath+":v1", "")
	if err != nil || again.Rootfs != got.Rootfs {
		t.Fatalf("second resolve: %v %v", again, err)
	}
	if _, err := os.Stat(filepath.Join(again.Rootfs, "marker")); err != nil {
		t.Error("second resolve unpacked again")
	}
	if _, err := cache.Resolve(context.Background(), "oci:"+dirPath+":nope", ""); !errors.Is(err, errImageNotFound) || !strings.Contains(err.Error(), "v1") {
		t.Errorf("missing tag: %v", err)
	}
}

// TestResolveRegistry pulls from go-containerregistry's in-memory registry
// on loopback, then resolves again from the cache with the registry gone.
func TestResolveRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	ref := strings.TrimPrefix(srv.URL, "http://") + "/berth/app:1.0"
	img := ociImage(t, testImageConfig, tarOf(t, baseLayer...), tarOf(t, topLayer...))
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	cache := newImageCache(t.TempDir())
	got, err := cache.Resolve(context.Background(), ref, "")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(got.Rootfs, "usr/bin/viasymlink")); string(b) != "v" || got.Config.Cmd[0] != "serve" {
		t.Fatalf("pulled image: %v %+v", tree(t, got.Rootfs), got.Config)
	}
	srv.Close()
	again, err := cache.Resolve(context.Background(), ref, "")
	if err != nil || again.Digest != got.Digest {
		t.Fatalf("cached resolve with the registry down: %v %v", again, err)
	}
	if _, err := cache.Resolve(context.Background(), strings.TrimPrefix(srv.URL, "http://")+"/berth/other:1", ""); err == nil {
		t.Fatal("pull from a closed registry succeeded")
	}
}

// TestResolveTarAndDir covers tar:PATH (gzip detected) and dir:PATH.
func TestResolveTarAndDir(t *testing.T) {
	dirPath := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarOf(t, baseLayer...))
	zw.Close()
	os.WriteFile(filepath.Join(dirPath, "rootfs.tar.gz"), gz.Bytes(), 0o644)
	cache := newImageCache(t.TempDir())
	got, err := cache.Resolve(context.Background(), "tar:rootfs.tar.gz", dirPath)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(got.Rootfs, "opt/app/sub/deep")); string(b) != "deep" || !strings.HasPrefix(got.Digest, "sha256:") {
		t.Fatalf("tar: %v %s", tree(t, got.Rootfs), got.Digest)
	}
	// Another process (a fresh cache object on the same directory) does
	// not hash the tarball again while its size and mtime are unchanged.
	tarPath := filepath.Join(dirPath, "rootfs.tar.gz")
	st, _ := os.Stat(tarPath)
	os.WriteFile(tarPath, bytes.Repeat([]byte{0}, len(gz.Bytes())), 0o644)
	os.Chtimes(tarPath, st.ModTime(), st.ModTime())
	again, err := newImageCache(cache.dir).Resolve(context.Background(), "tar:rootfs.tar.gz", dirPath)
	if err != nil || again.Digest != got.Digest {
		t.Fatalf("tar digest memo: %+v %v", again, err)
	}
	// zstd and plain tarballs; xz is refused by name.
	var zs bytes.Buffer
	zw2, _ := zstd.NewWriter(&zs)
	zw2.Write(tarOf(t, file("z", "zstd")))
	zw2.Close()
	os.WriteFile(filepath.Join(dirPath, "r.tar.zst"), zs.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dirPath, "r.tar"), tarOf(t, file("p", "plain")), 0o644)
	os.WriteFile(filepath.Join(dirPath, "r.tar.xz"), []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2}, 0o644)
	for name, want := range map[string]string{"r.tar.zst": "z=zstd", "r.tar": "p=plain"} {
		img, err := cache.Resolve(context.Background(), "tar:"+name, dirPath)
		if err != nil || strings.Join(tree(t, img.Rootfs), ",") != want {
			t.Errorf("%s: %v %v", name, err, img)
		}
	}
	if _, err := cache.Resolve(context.Background(), "tar:r.tar.xz", dirPath); !errors.Is(err, errXZ) {
		t.Errorf("xz without a decoder: %v", err)
	}
	// With the driver's hook: the host's xz through the Cmder.
	if _, err := exec.LookPath("xz"); err == nil {
		if err := exec.Command("sh", "-c", "xz -c < "+filepath.Join(dirPath, "r.tar")+" > "+filepath.Join(dirPath, "r.tar.xz")).Run(); err != nil {
			t.Fatal(err)
		}
		d := &Driver{cmder: hostcmd.Local{}}
		cache.unxz = d.unxz
		img, err := cache.Resolve(context.Background(), "tar:r.tar.xz", dirPath)
		if err != nil || strings.Join(tree(t, img.Rootfs), ",") != "p=plain" {
			t.Errorf("xz via the host tool: %v %v", err, img)
		}
	}
	d, err := cache.Resolve(context.Background(), "dir:.", dirPath)
	if err != nil || d.Rootfs != dirPath || d.Digest != "" {
		t.Fatalf("dir: %+v %v", d, err)
	}
	if _, err := cache.Resolve(context.Background(), "dir:missing", dirPath); err == nil {
		t.Fatal("dir: missing directory accepted")
	}
}
