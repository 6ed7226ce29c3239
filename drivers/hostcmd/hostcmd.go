// Package hostcmd is berth's one wrapper for running host tools (lxc-*,
// crun, runc). Drivers take a Cmder in their constructor, so tests can swap
// in a Replayer that answers from recorded real output, and every failure is
// a RunError that shows the shell-quoted command and what it printed.
package hostcmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// Cmder makes commands.
type Cmder interface {
	Command(ctx context.Context, name string, args ...string) Cmd
}

// Cmd is one command to run once.
type Cmd interface {
	SetEnv(env ...string) Cmd // extra KEY=VALUE entries on top of the process environment
	SetStdin(r io.Reader) Cmd
	SetStdout(w io.Writer) Cmd
	SetStderr(w io.Writer) Cmd
	// SetSysProcAttr sets process attributes (namespaces, session) for
	// local commands; a Replayer ignores it.
	SetSysProcAttr(a *syscall.SysProcAttr) Cmd
	// Run runs the command. Unless stdout/stderr were set, their combined
	// output is kept for a RunError.
	Run() error
	// Output runs the command and returns its stdout; stderr goes into a
	// RunError on failure.
	Output() ([]byte, error)
}

// RunError is a failed command with what it printed.
type RunError struct {
	Argv   []string
	Output []byte
	Err    error
}

func (e *RunError) Error() string {
	out := strings.TrimSpace(string(e.Output))
	if out == "" {
		return fmt.Sprintf("command %s failed: %v", Quote(e.Argv), e.Err)
	}
	return fmt.Sprintf("command %s failed: %v\n%s", Quote(e.Argv), e.Err, out)
}

func (e *RunError) Unwrap() error { return e.Err }

// ExitCode returns the command's exit status, or -1 when it did not exit
// normally (not found, signalled).
func (e *RunError) ExitCode() int {
	var x *exec.ExitError
	if errors.As(e.Err, &x) {
		return x.ExitCode()
	}
	var c exitCoder
	if errors.As(e.Err, &c) {
		return c.ExitCode()
	}
	return -1
}

type exitCoder interface{ ExitCode() int }

// ExitCode returns the exit status carried by err (a RunError), or -1.
func ExitCode(err error) int {
	var r *RunError
	if errors.As(err, &r) {
		return r.ExitCode()
	}
	return -1
}

// Quote renders argv as a shell command a person can paste.
func Quote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) < 0 {
			q[i] = a
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// Local runs commands on this host.
type Local struct{}

func (Local) Command(ctx context.Context, name string, args ...string) Cmd {
	return &localCmd{cmd: exec.CommandContext(ctx, name, args...), argv: append([]string{name}, args...)}
}

type localCmd struct {
	cmd            *exec.Cmd
	argv           []string
	stdout, stderr io.Writer
}

func (c *localCmd) SetEnv(env ...string) Cmd {
	c.cmd.Env = append(os.Environ(), env...)
	return c
}
func (c *localCmd) SetStdin(r io.Reader) Cmd  { c.cmd.Stdin = r; return c }
func (c *localCmd) SetStdout(w io.Writer) Cmd { c.stdout = w; return c }
func (c *localCmd) SetStderr(w io.Writer) Cmd { c.stderr = w; return c }
func (c *localCmd) SetSysProcAttr(a *syscall.SysProcAttr) Cmd {
	c.cmd.SysProcAttr = a
	return c
}

func (c *localCmd) Run() error {
	var combined bytes.Buffer
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	if c.stdout == nil {
		c.cmd.Stdout = &combined
	}
	if c.stderr == nil {
		c.cmd.Stderr = &combined
	}
	if err := c.cmd.Run(); err != nil {
		return &RunError{Argv: c.argv, Output: combined.Bytes(), Err: err}
	}
	return nil
}

func (c *localCmd) Output() ([]byte, error) {
	var stdout, stderr bytes.Buffer
	c.cmd.Stdout = &stdout
	c.cmd.Stderr = &stderr
	if c.stderr != nil {
		c.cmd.Stderr = io.MultiWriter(&stderr, c.stderr)
	}
	if err := c.cmd.Run(); err != nil {
		return stdout.Bytes(), &RunError{Argv: c.argv, Output: stderr.Bytes(), Err: err}
	}
	return stdout.Bytes(), nil
}
