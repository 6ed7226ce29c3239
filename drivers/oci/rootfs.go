package oci

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// How an instance gets its private, writable root filesystem from a
// shared image rootfs (see docs/backends/oci.md for the measurements).
const (
	// rootfsOverlay mounts overlayfs: lower = the cached image, upper and
	// work in the bundle. Costs one mount, whatever the image size.
	rootfsOverlay = "overlay"
	// rootfsCopy copies the image into the bundle: needs no mount, costs
	// time and disk in proportion to the image.
	rootfsCopy = "copy"
)

// Sub-directories of a bundle used for the root filesystem.
const (
	rootfsDirName = "rootfs"
	upperDirName  = "upper"
	workDirName   = "work"
)

// prepareRootfs gives bundle a private rootfs on top of lower and returns
// the mode used: overlay when the kernel allows it (else copy, logged).
func (d *Driver) prepareRootfs(bundle, lower string) (string, error) {
	target := filepath.Join(bundle, rootfsDirName)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return "", err
	}
	if d.cfg.RootfsMode == rootfsOverlay {
		err := mountOverlay(bundle, lower)
		if err == nil {
			return rootfsOverlay, nil
		}
		d.log.Warn("overlayfs mount refused; copying the image into the bundle instead (slower, more disk)",
			"backend", d.backend, "bundle", bundle, "err", err)
	}
	if err := copyTree(lower, target); err != nil {
		return "", fmt.Errorf("copy rootfs: %w", err)
	}
	return rootfsCopy, nil
}

func mountOverlay(bundle, lower string) error {
	upper := filepath.Join(bundle, upperDirName)
	work := filepath.Join(bundle, workDirName)
	for _, dir := range []string{upper, work} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	if err := unix.Mount("overlay", filepath.Join(bundle, rootfsDirName), "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay %s: %w", opts, err)
	}
	return nil
}

// ensureRootfs remounts an overlay rootfs that is gone (host reboot)
// before the container is created again from its bundle.
func ensureRootfs(bundle string, sc *Sidecar) error {
	if sc == nil || sc.RootfsMode != rootfsOverlay {
		return nil
	}
	target := filepath.Join(bundle, rootfsDirName)
	mounted, err := isMountPoint(target)
	if err != nil || mounted {
		return err
	}
	return mountOverlay(bundle, sc.Lower)
}

func isMountPoint(path string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return false, err
	}
	if err := unix.Lstat(filepath.Dir(path), &parent); err != nil {
		return false, err
	}
	// An overlay root has its own device; a bind of the same fs would not,
	// but berth only mounts overlays here.
	return st.Dev != parent.Dev, nil
}

// removeBundle unmounts the rootfs and removes the bundle directory. The
// waiter may write exit.json while we remove: retry a few times.
func removeBundle(bundle string) error {
	target := filepath.Join(bundle, rootfsDirName)
	if m, _ := isMountPoint(target); m {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	var err error
	for i := 0; i < 5; i++ {
		if err = os.RemoveAll(bundle); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

// copyTree copies a directory tree preserving modes, owners, symlinks and
// times (hard links become copies).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		fi, err := e.Info()
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*unix.Stat_t)
		switch {
		case e.IsDir():
			if err := os.MkdirAll(out, 0o700); err != nil {
				return err
			}
			defer os.Chmod(out, fi.Mode().Perm()|fi.Mode()&(fs.ModeSetgid|fs.ModeSticky))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, out); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if err := copyFile(p, out, fi.Mode()); err != nil {
				return err
			}
		default:
			return nil
		}
		if st != nil {
			os.Lchown(out, int(st.Uid), int(st.Gid))
		}
		return nil
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}
