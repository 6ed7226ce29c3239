package manifest

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Image reference kinds of an OCI instance's image field.
const (
	ImageDir      = "dir"      // dir:PATH, a root filesystem directory
	ImageOCI      = "oci"      // oci:PATH[:TAG], an OCI image layout
	ImageTar      = "tar"      // tar:PATH, a root filesystem tarball
	ImageRegistry = "registry" // anything else: a registry reference
)

// ImageRef is a parsed image field.
type ImageRef struct {
	Kind string // ImageDir, ImageOCI, ImageTar or ImageRegistry
	Path string // local kinds: the path (absolute after Load)
	Tag  string // oci: the tag inside the layout ("" = the only/latest one)
	Ref  string // registry: the reference as written (docker.io/library/busybox:1.36)
}

// String renders the reference in the form it is written.
func (r ImageRef) String() string {
	switch r.Kind {
	case ImageDir, ImageTar:
		return r.Kind + ":" + r.Path
	case ImageOCI:
		if r.Tag != "" {
			return "oci:" + r.Path + ":" + r.Tag
		}
		return "oci:" + r.Path
	}
	return r.Ref
}

// ParseImageRef reads dir:PATH, oci:PATH[:TAG], tar:PATH or a registry
// reference. For oci:, a last ":" segment without "/" is the tag.
func ParseImageRef(s string) (ImageRef, error) {
	kind, rest, ok := strings.Cut(s, ":")
	switch {
	case ok && kind == ImageDir, ok && kind == ImageTar:
		if rest == "" {
			return ImageRef{}, fmt.Errorf("%s: needs a path, e.g. %s:./rootfs", kind, kind)
		}
		return ImageRef{Kind: kind, Path: rest}, nil
	case ok && kind == ImageOCI:
		path, tag := rest, ""
		if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.Contains(rest[i+1:], "/") {
			path, tag = rest[:i], rest[i+1:]
		}
		if path == "" {
			return ImageRef{}, fmt.Errorf("oci: needs an OCI layout path, e.g. oci:./images/busybox:latest")
		}
		return ImageRef{Kind: ImageOCI, Path: path, Tag: tag}, nil
	}
	if s == "" || strings.ContainsAny(s, " \t\n") {
		return ImageRef{}, fmt.Errorf("%q is not an image reference: want dir:PATH, oci:PATH[:TAG], tar:PATH or a registry reference", s)
	}
	return ImageRef{Kind: ImageRegistry, Ref: s}, nil
}

// absolute makes a local image path absolute against dir.
func (r ImageRef) absolute(dir string) ImageRef {
	if r.Kind != ImageRegistry && !filepath.IsAbs(r.Path) {
		r.Path = filepath.Join(dir, r.Path)
	}
	return r
}
