package oci

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Whiteout markers of the OCI image layer format.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

var errTraversal = errors.New("path escapes the root filesystem")

var errXZ = errors.New("xz-compressed tarball: needs the xz tool (Debian package xz-utils)")

// decompress detects a gzip, bzip2 or zstd tarball by its magic bytes; an
// xz one is errXZ (berth has no decoder: the driver pipes it through the
// host's xz).
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, errXZ
	}
	return br, nil
}

// cleanEntryName returns a tar entry name relative to the root ("." for
// the root itself) or an error when it climbs out with "..".
func cleanEntryName(n string) (string, error) {
	rel := path.Clean(strings.TrimLeft(n, "/"))
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%w: %q", errTraversal, n)
	}
	return rel, nil
}

// applyLayer unpacks one uncompressed layer tarball on top of root:
// ".wh.NAME" deletes NAME from lower layers, ".wh..wh..opq" empties its
// directory of lower-layer content, names climbing out with ".." are
// rejected, and os.Root refuses to follow any symlink out of the root
// (including absolute ones). Device nodes are skipped: containers get
// /dev from the runtime.
func applyLayer(root *os.Root, r io.Reader) error {
	tr := tar.NewReader(r)
	// created holds every path this layer wrote and their parents, so an
	// opaque marker keeps this layer's own entries whatever their order.
	created := map[string]bool{}
	mark := func(p string) {
		for ; p != "." && p != "/" && !created[p]; p = path.Dir(p) {
			created[p] = true
		}
	}
	type dirMeta struct {
		name  string
		mode  fs.FileMode
		mtime time.Time
	}
	var dirs []dirMeta
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "." {
			continue
		}
		dir, base := path.Dir(name), path.Base(name)
		if base == whiteoutOpaque {
			if err := clearLower(root, dir, created); err != nil {
				return fmt.Errorf("opaque whiteout %s: %w", hdr.Name, err)
			}
			continue
		}
		if strings.HasPrefix(base, whiteoutPrefix) {
			victim := path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix))
			if err := root.RemoveAll(victim); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("whiteout %s: %w", hdr.Name, err)
			}
			continue
		}
		if dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		}
		if fi, err := root.Lstat(name); err == nil && !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
			if err := root.RemoveAll(name); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		}
		mode := hdr.FileInfo().Mode()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
			dirs = append(dirs, dirMeta{name, mode, hdr.ModTime})
		case tar.TypeReg, tar.TypeRegA:
			f, err := root.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
			if err := root.Chmod(name, mode); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeLink:
			target, err := cleanEntryName(hdr.Linkname)
			if err != nil {
				return err
			}
			if err := root.Link(target, name); err != nil {
				return fmt.Errorf("%s: hard link to %s: %w", hdr.Name, hdr.Linkname, err)
			}
		default:
			// Devices, FIFOs and the like: not needed in a rootfs.
			continue
		}
		if err := root.Lchown(name, hdr.Uid, hdr.Gid); err != nil && !errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA {
			root.Chtimes(name, hdr.ModTime, hdr.ModTime)
		}
		mark(name)
	}
	// Directory modes last (a read-only directory must first be filled),
	// deepest first.
	sort.SliceStable(dirs, func(i, j int) bool { return len(dirs[i].name) > len(dirs[j].name) })
	for _, d := range dirs {
		if err := root.Chmod(d.name, d.mode); err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		root.Chtimes(d.name, d.mtime, d.mtime)
	}
	return nil
}

// clearLower removes what lower layers put in dir, keeping what the
// current layer created.
func clearLower(root *os.Root, dir string, created map[string]bool) error {
	if dir != "." {
		fi, err := root.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return nil
		}
	}
	entries, err := fs.ReadDir(root.FS(), dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := path.Join(dir, e.Name())
		switch {
		case !created[p]:
			if err := root.RemoveAll(p); err != nil {
				return err
			}
		case e.IsDir():
			if err := clearLower(root, p, created); err != nil {
				return err
			}
		}
	}
	return nil
}
