package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/hostcmd"
)

// classify turns a failed runtime invocation into berth's sentinel errors,
// the one place that knows crun's and runc's wording. The RunError stays
// in the chain so the command and its output are still printed.
func classify(err error, id, runtime string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, exec.ErrNotFound) || hostcmd.ExitCode(err) == -1 && errors.Is(err, fs.ErrNotExist) {
		pkg := "crun"
		if strings.Contains(filepath.Base(runtime), "runc") {
			pkg = "runc"
		}
		return fmt.Errorf("%w: OCI runtime %q not found: install the Debian package %s (apt-get install -y %s): %w",
			drivers.ErrToolMissing, runtime, pkg, pkg, err)
	}
	var re *hostcmd.RunError
	if !errors.As(err, &re) {
		return err
	}
	msg := strings.ToLower(string(re.Output))
	var kind error
	switch {
	case strings.Contains(msg, "already exists"):
		kind = drivers.ErrExists
	case strings.Contains(msg, "does not exist"), // runc
		strings.Contains(msg, "no such file or directory") && id != "" && strings.Contains(msg, "/"+strings.ToLower(id)), // crun: state dir of the id missing
		strings.Contains(msg, "container not found"):
		kind = drivers.ErrNotFound
	case strings.Contains(msg, "is not running"), // crun kill/exec
		strings.Contains(msg, "not running"),
		strings.Contains(msg, "no such process"),          // crun kill of a process that just ended
		strings.Contains(msg, "cannot exec in a stopped"), // runc
		strings.Contains(msg, "container has stopped"),    // runc start
		strings.Contains(msg, "cannot start a container that has stopped"):
		kind = drivers.ErrNotRunning
	}
	if kind == nil {
		return err
	}
	return fmt.Errorf("%w: %w", kind, err)
}
