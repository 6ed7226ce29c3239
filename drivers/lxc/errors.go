package lxc

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/hostcmd"
)

// Errors specific to LXC. Each wraps (or is matched alongside) a
// drivers sentinel where one fits, so the executor can act on it.
var (
	// ErrNotRoot: berth manages privileged system containers; the lxc-*
	// tools need root for that.
	ErrNotRoot = errors.New("berth must run as root to manage LXC containers (unprivileged LXC is not supported)")
	// ErrTemplateUnavailable: a template could not fetch or read its
	// image (download template offline, missing rootfs tarball, missing
	// OCI layout).
	ErrTemplateUnavailable = errors.New("template unavailable")
	// ErrTemplateFailed: the template ran and failed (a corrupt tarball,
	// a broken image); the error quotes the template's own output.
	ErrTemplateFailed = errors.New("template failed")
	// ErrStartFailed: lxc-start refused to start the container; the
	// error carries the ERROR lines of the container's start log.
	ErrStartFailed = errors.New("container failed to start")
)

// toolPackage is the Debian package that provides the lxc-* tools.
const toolPackage = "lxc"

// classify turns a failed lxc-* command into an error the planner and
// executor understand. It is the one place where tool messages and exit
// codes are interpreted. op is the driver operation ("create", "start"),
// name the container.
func classify(op, name string, err error) error {
	if err == nil {
		return nil
	}
	wrap := func(sentinel error, detail string) error {
		if detail == "" {
			return fmt.Errorf("driver lxc: %s %s: %w", op, name, sentinel)
		}
		return fmt.Errorf("driver lxc: %s %s: %w: %s", op, name, sentinel, detail)
	}
	if errors.Is(err, exec.ErrNotFound) {
		tool := "lxc tools"
		var re *hostcmd.RunError
		if errors.As(err, &re) && len(re.Argv) > 0 {
			tool = re.Argv[0]
		}
		return wrap(drivers.ErrToolMissing, fmt.Sprintf("%s is not installed: install the Debian package %q (apt-get install -y %s)", tool, toolPackage, toolPackage))
	}
	out := ""
	var re *hostcmd.RunError
	if errors.As(err, &re) {
		out = string(re.Output)
	}
	switch {
	case hostcmd.ExitCode(err) == 2 && strings.Contains(out, "is not running"): // lxc-stop
		return wrap(drivers.ErrNotRunning, "")
	case strings.Contains(out, "Container already exists"):
		return wrap(drivers.ErrExists, "a container with this name already exists in the lxcpath")
	case strings.Contains(out, name+" doesn't exist"), strings.Contains(out, "is not defined"),
		strings.Contains(out, "No container config specified"):
		return wrap(drivers.ErrNotFound, "")
	case strings.Contains(out, "Failed to download"), strings.Contains(out, "Unable to fetch"),
		strings.Contains(out, "Could not resolve host"):
		return wrap(ErrTemplateUnavailable, "the download template needs network access to images.linuxcontainers.org (or a cached image): "+templateOutput(out))
	case strings.Contains(out, "Template \"") && strings.Contains(out, "not found"):
		return wrap(ErrTemplateUnavailable, "no such LXC template (the lxc package installs them in /usr/share/lxc/templates)")
	case strings.Contains(out, "Failed to create container from template"):
		return wrap(ErrTemplateFailed, templateOutput(out))
	case strings.Contains(out, "Failed to get init pid"):
		return wrap(drivers.ErrNotRunning, "")
	case strings.Contains(out, "Operation not permitted") && strings.Contains(out, "root"),
		strings.Contains(out, "must be run as root"):
		return wrap(ErrNotRoot, "")
	}
	return fmt.Errorf("driver lxc: %s %s: %w", op, name, err)
}

// templateOutput keeps what a failed template printed itself (not
// lxc-create's own log lines), at most five lines, joined with "; ".
func templateOutput(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "lxc-create: ") {
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) > 5 {
		keep = keep[len(keep)-5:]
	}
	if len(keep) == 0 {
		return "see the template's output above"
	}
	return strings.Join(keep, "; ")
}
