package lxc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/hostcmd"
)

// Exec runs a command in the running container with lxc-attach. The
// environment is cleared (--clear-env) and rebuilt from the container's
// lxc.environment plus req.Env, so health checks see what the container's
// init sees and never the caller's variables. The command's exit code is
// returned as is (127: no such command); a container that is not running
// is drivers.ErrNotRunning.
func (d *Driver) Exec(ctx context.Context, ref drivers.ObjectRef, req drivers.ExecRequest) (int, error) {
	name := ref.Name
	if len(req.Argv) == 0 {
		return -1, fmt.Errorf("driver lxc: exec %s: empty command", name)
	}
	env := map[string]string{}
	if c, err := readConfig(d.dir(name) + "/config"); err == nil {
		for _, kv := range c["lxc.environment"] {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	} else if os.IsNotExist(err) {
		return -1, fmt.Errorf("driver lxc: exec %s: %w", name, drivers.ErrNotFound)
	}
	for k, v := range req.Env {
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := []string{"-P", d.cfg.LXCPath, "-n", name, "--clear-env"}
	for _, k := range keys {
		args = append(args, "-v", k+"="+env[k])
	}
	args = append(append(args, "--"), req.Argv...)

	// lxc-attach's own complaints arrive on stderr with the command's;
	// keep the tail to tell "not running" from the command's exit 1.
	var tail tailBuffer
	stderr := io.Writer(&tail)
	if req.Stderr != nil {
		stderr = io.MultiWriter(req.Stderr, &tail)
	}
	stdout := req.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	cmd := d.cmd.Command(ctx, "lxc-attach", args...).SetStdout(stdout).SetStderr(stderr)
	if req.Stdin != nil {
		cmd.SetStdin(req.Stdin)
	}
	err := cmd.Run()
	if err == nil {
		return 0, nil
	}
	code := hostcmd.ExitCode(err)
	if code < 0 {
		return -1, classify("exec in", name, err)
	}
	if code == 1 && bytes.Contains(tail.Bytes(), []byte("lxc-attach: ")) {
		// Exit 1 with lxc-attach's own complaint: classify it like any
		// other tool failure (not running, not found).
		cerr := classify("exec in", name, &hostcmd.RunError{Argv: append([]string{"lxc-attach"}, args...), Output: tail.Bytes(), Err: err})
		if errors.Is(cerr, drivers.ErrNotRunning) || errors.Is(cerr, drivers.ErrNotFound) {
			return -1, cerr
		}
	}
	return code, nil
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte { return t.b }

// logPollInterval is how often a followed log is checked for growth.
var logPollInterval = 200 * time.Millisecond

// Logs copies the container's console log (lxc.console.logfile, which
// berth points at LXCPATH/NAME/console.log) to w; with follow it keeps
// copying what is appended until ctx ends or the container is destroyed.
func (d *Driver) Logs(ctx context.Context, ref drivers.ObjectRef, follow bool, w io.Writer) error {
	name := ref.Name
	path := d.dir(name) + "/console.log"
	if c, err := readConfig(d.dir(name) + "/config"); err == nil {
		if p, ok := c.last("lxc.console.logfile"); ok {
			path = p
		}
	} else if os.IsNotExist(err) {
		return fmt.Errorf("driver lxc: logs %s: %w", name, drivers.ErrNotFound)
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		if !follow {
			return nil // never started: no output yet
		}
		for errors.Is(err, os.ErrNotExist) {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(logPollInterval):
			}
			if _, serr := os.Stat(d.dir(name)); serr != nil {
				return nil
			}
			f, err = os.Open(path)
		}
	}
	if err != nil {
		return fmt.Errorf("driver lxc: logs %s: %w", name, err)
	}
	defer f.Close()
	for {
		if _, err := io.Copy(w, f); err != nil {
			return fmt.Errorf("driver lxc: logs %s: %w", name, err)
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(logPollInterval):
		}
		if _, err := os.Stat(path); err != nil {
			return nil // destroyed
		}
	}
}
