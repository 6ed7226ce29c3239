package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sys/unix"
)

// Image forms accepted in an instance's `image` field.
const (
	imageDir    = "dir:" // dir:PATH, a root filesystem directory used as is (read-only lower layer)
	imageTar    = "tar:" // tar:PATH, a root filesystem tarball
	imageLayout = "oci:" // oci:PATH[:TAG], an OCI image layout on disk
)

// ImageConfig is the part of an OCI image config berth uses as defaults
// under the instance's own command/entrypoint/environment/working_dir/user.
type ImageConfig struct {
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	User       string   `json:"user,omitempty"`
	// StopSignal is the image's graceful stop signal ("SIGQUIT"); Stop
	// sends it instead of SIGTERM.
	StopSignal string `json:"stop_signal,omitempty"`
}

// Image is a resolved image: a read-only root filesystem and its config.
type Image struct {
	Ref    string
	Digest string // "sha256:..." (empty for dir:)
	Rootfs string // directory; shared, never written by a container
	Config ImageConfig
}

// imageCache keeps unpacked images under dir/sha256/<hex>/{rootfs,config.json}
// and remembers which digest a tag/reference resolved to under dir/refs, so
// a second instance (or a second run) of an image never unpacks or pulls it
// again. Unpacking is serialised per digest with a file lock, so parallel
// creates of one image unpack it once, also across processes.
type imageCache struct {
	dir string
	mu  sync.Mutex
	// tarDigests memoises the digest of tarballs by path+size+mtime.
	tarDigests map[string]string
	// unxz streams an xz-compressed file decompressed to w (the host's
	// xz tool through the driver's Cmder); nil refuses xz tarballs.
	unxz func(ctx context.Context, path string, w io.Writer) error
}

func newImageCache(dir string) *imageCache {
	return &imageCache{dir: dir, tarDigests: map[string]string{}}
}

// Resolve turns an image reference into an unpacked, cached image.
// Relative paths are resolved against stackDir.
func (c *imageCache) Resolve(ctx context.Context, ref, stackDir string) (*Image, error) {
	abs := func(p string) string {
		if !filepath.IsAbs(p) && stackDir != "" {
			p = filepath.Join(stackDir, p)
		}
		return filepath.Clean(p)
	}
	switch {
	case ref == "":
		return nil, errors.New("no image: set `image` (dir:PATH, tar:PATH, oci:PATH[:TAG] or a registry reference)")
	case strings.HasPrefix(ref, imageDir):
		p := abs(strings.TrimPrefix(ref, imageDir))
		if st, err := os.Stat(p); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("image %s: not a directory: %v", ref, err)
		}
		return &Image{Ref: ref, Rootfs: p}, nil
	case strings.HasPrefix(ref, imageTar):
		return c.fromTar(ctx, ref, abs(strings.TrimPrefix(ref, imageTar)))
	case strings.HasPrefix(ref, imageLayout):
		p, tag := splitLayoutRef(strings.TrimPrefix(ref, imageLayout))
		return c.fromLayout(ref, abs(p), tag)
	default:
		return c.fromRegistry(ctx, ref)
	}
}

// splitLayoutRef splits "PATH[:TAG]"; a colon followed by a slash belongs
// to the path.
func splitLayoutRef(s string) (path, tag string) {
	i := strings.LastIndex(s, ":")
	if i < 0 || strings.Contains(s[i+1:], "/") {
		return s, ""
	}
	return s[:i], s[i+1:]
}

func (c *imageCache) entryDir(digest string) string {
	return filepath.Join(c.dir, strings.ReplaceAll(digest, ":", "/"))
}

// cached returns the image if digest is unpacked already.
func (c *imageCache) cached(ref, digest string) (*Image, bool) {
	dir := c.entryDir(digest)
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, false
	}
	var cfg ImageConfig
	if json.Unmarshal(data, &cfg) != nil {
		return nil, false
	}
	return &Image{Ref: ref, Digest: digest, Rootfs: filepath.Join(dir, "rootfs"), Config: cfg}, true
}

// unpack fills the cache entry of digest once: layers are applied in order
// into a temporary directory that is renamed into place, and config.json,
// written last, marks the entry complete.
func (c *imageCache) unpack(ref, digest string, cfg ImageConfig, layers func(apply func(io.Reader) error) error) (*Image, error) {
	if img, ok := c.cached(ref, digest); ok {
		return img, nil
	}
	dir := c.entryDir(digest)
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, err
	}
	unlock, err := lockFile(dir + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if img, ok := c.cached(ref, digest); ok {
		return img, nil
	}
	os.RemoveAll(dir)
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	rootfs := filepath.Join(tmp, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return nil, err
	}
	err = layers(func(r io.Reader) error { return applyLayer(root, r) })
	root.Close()
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("image %s: unpack: %w", ref, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		return nil, err
	}
	return &Image{Ref: ref, Digest: digest, Rootfs: filepath.Join(dir, "rootfs"), Config: cfg}, nil
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

func (c *imageCache) fromTar(ctx context.Context, ref, path string) (*Image, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", path, st.Size(), st.ModTime().UnixNano())
	c.mu.Lock()
	digest := c.tarDigests[key]
	c.mu.Unlock()
	// Across runs: refs/ remembers the digest of this path+size+mtime, so
	// a big tarball is hashed once, not at every `berth up`.
	refFile := filepath.Join(c.dir, "refs", refKey("tar\x00"+key))
	if digest == "" {
		if data, err := os.ReadFile(refFile); err == nil {
			if _, ok := c.cached(ref, strings.TrimSpace(string(data))); ok {
				digest = strings.TrimSpace(string(data))
			}
		}
	}
	if digest == "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
		c.mu.Lock()
		c.tarDigests[key] = digest
		c.mu.Unlock()
		defer c.writeRef(refFile, digest)
	}
	return c.unpack(ref, digest, ImageConfig{}, func(apply func(io.Reader) error) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r, err := decompress(f)
		if errors.Is(err, errXZ) && c.unxz != nil {
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(c.unxz(ctx, path, pw)) }()
			err := apply(pr)
			pr.CloseWithError(err)
			return err
		}
		if err != nil {
			return err
		}
		return apply(r)
	})
}

// fromLayout reads an OCI image layout: index.json -> the manifest tagged
// TAG (org.opencontainers.image.ref.name; the only manifest when no tag is
// given, else "latest") -> config and layers.
func (c *imageCache) fromLayout(ref, path, tag string) (*Image, error) {
	lp, err := layout.FromPath(path)
	if err != nil {
		return nil, fmt.Errorf("image %s: not an OCI image layout: %w", ref, err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	img, err := pickImage(idx, tag)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	return c.fromV1(ref, img)
}

// pickImage finds the tagged manifest in an index, descending into nested
// indexes for this platform.
func pickImage(idx v1.ImageIndex, tag string) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	descs := im.Manifests
	if tag != "" || len(descs) > 1 {
		want := tag
		if want == "" {
			want = "latest"
		}
		var found []v1.Descriptor
		for _, d := range descs {
			if d.Annotations["org.opencontainers.image.ref.name"] == want {
				found = append(found, d)
			}
		}
		if len(found) == 0 {
			var tags []string
			for _, d := range descs {
				if t := d.Annotations["org.opencontainers.image.ref.name"]; t != "" {
					tags = append(tags, t)
				}
			}
			return nil, fmt.Errorf("%w: no manifest tagged %q (tags: %s)", errImageNotFound, want, strings.Join(tags, ", "))
		}
		descs = found
	}
	if len(descs) == 0 {
		return nil, fmt.Errorf("%w: empty index", errImageNotFound)
	}
	d := descs[0]
	if d.MediaType.IsIndex() {
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, err
		}
		cm, err := child.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, cd := range cm.Manifests {
			if cd.Platform == nil || cd.Platform.OS == "linux" && cd.Platform.Architecture == runtime.GOARCH {
				return child.Image(cd.Digest)
			}
		}
		return nil, fmt.Errorf("%w: no linux/%s manifest", errImageNotFound, runtime.GOARCH)
	}
	return idx.Image(d.Digest)
}

var errImageNotFound = errors.New("image not found")

// fromV1 unpacks a go-containerregistry image by its manifest digest.
func (c *imageCache) fromV1(ref string, img v1.Image) (*Image, error) {
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	if cached, ok := c.cached(ref, digest.String()); ok {
		return cached, nil
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", ref, err)
	}
	cfg := ImageConfig{
		Entrypoint: cf.Config.Entrypoint, Cmd: cf.Config.Cmd, Env: cf.Config.Env,
		WorkingDir: cf.Config.WorkingDir, User: cf.Config.User, StopSignal: cf.Config.StopSignal,
	}
	return c.unpack(ref, digest.String(), cfg, func(apply func(io.Reader) error) error {
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		for i, l := range layers {
			rc, err := l.Uncompressed()
			if err != nil {
				return fmt.Errorf("layer %d: %w", i, err)
			}
			err = apply(rc)
			rc.Close()
			if err != nil {
				ld, _ := l.Digest()
				return fmt.Errorf("layer %d (%s): %w", i, ld, err)
			}
		}
		return nil
	})
}

// fromRegistry pulls over the OCI distribution API with the "missing" pull
// policy: a reference resolved before is used from the cache without
// contacting the registry (refs/<sha256 of ref> holds its digest).
func (c *imageCache) fromRegistry(ctx context.Context, ref string) (*Image, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("image %q: want dir:PATH, tar:PATH, oci:PATH[:TAG] or a registry reference: %w", ref, err)
	}
	refFile := filepath.Join(c.dir, "refs", refKey(r.Name()))
	if data, err := os.ReadFile(refFile); err == nil {
		if img, ok := c.cached(ref, strings.TrimSpace(string(data))); ok {
			return img, nil
		}
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))
	if err != nil {
		return nil, fmt.Errorf("image %s: pull: %w", ref, err)
	}
	res, err := c.fromV1(ref, img)
	if err != nil {
		return nil, err
	}
	c.writeRef(refFile, res.Digest)
	return res, nil
}

// writeRef records which digest a reference resolved to (best effort).
func (c *imageCache) writeRef(refFile, digest string) {
	os.MkdirAll(filepath.Dir(refFile), 0o700)
	tmp := fmt.Sprintf("%s.tmp%d", refFile, os.Getpid())
	if os.WriteFile(tmp, []byte(digest+"\n"), 0o600) == nil {
		os.Rename(tmp, refFile)
	}
}

func refKey(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
