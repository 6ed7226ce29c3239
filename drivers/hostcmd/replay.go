package hostcmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
)

// Recording is one recorded run of a real command: its argv, what it
// printed and how it exited. Driver tests keep these in testdata/.
type Recording struct {
	Argv     []string `json:"argv"`
	Stdout   string   `json:"stdout,omitempty"`
	Stderr   string   `json:"stderr,omitempty"`
	ExitCode int      `json:"exit_code,omitempty"`
}

// Replayer is a Cmder that answers each command from recordings, matched
// by exact argv, and remembers every argv it was asked to run.
type Replayer struct {
	mu         sync.Mutex
	recordings []Recording
	Calls      [][]string
}

// NewReplayer answers from recs; a command with no recording fails.
func NewReplayer(recs ...Recording) *Replayer { return &Replayer{recordings: recs} }

func (r *Replayer) Command(_ context.Context, name string, args ...string) Cmd {
	return &replayCmd{r: r, argv: append([]string{name}, args...)}
}

type replayCmd struct {
	r              *Replayer
	argv           []string
	stdout, stderr io.Writer
}

type replayExit int

func (e replayExit) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
func (e replayExit) ExitCode() int { return int(e) }

func (c *replayCmd) SetEnv(...string) Cmd                    { return c }
func (c *replayCmd) SetStdin(io.Reader) Cmd                  { return c }
func (c *replayCmd) SetStdout(w io.Writer) Cmd               { c.stdout = w; return c }
func (c *replayCmd) SetStderr(w io.Writer) Cmd               { c.stderr = w; return c }
func (c *replayCmd) SetSysProcAttr(*syscall.SysProcAttr) Cmd { return c }

func (c *replayCmd) find() (Recording, error) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	c.r.Calls = append(c.r.Calls, c.argv)
	key := strings.Join(c.argv, "\x00")
	for _, rec := range c.r.recordings {
		if strings.Join(rec.Argv, "\x00") == key {
			return rec, nil
		}
	}
	return Recording{}, &RunError{Argv: c.argv, Err: fmt.Errorf("no recording for this command")}
}

func (c *replayCmd) Run() error {
	rec, err := c.find()
	if err != nil {
		return err
	}
	if c.stdout != nil {
		io.WriteString(c.stdout, rec.Stdout)
	}
	if c.stderr != nil {
		io.WriteString(c.stderr, rec.Stderr)
	}
	if rec.ExitCode != 0 {
		return &RunError{Argv: c.argv, Output: []byte(rec.Stdout + rec.Stderr), Err: replayExit(rec.ExitCode)}
	}
	return nil
}

func (c *replayCmd) Output() ([]byte, error) {
	rec, err := c.find()
	if err != nil {
		return nil, err
	}
	if rec.ExitCode != 0 {
		return []byte(rec.Stdout), &RunError{Argv: c.argv, Output: []byte(rec.Stderr), Err: replayExit(rec.ExitCode)}
	}
	return []byte(rec.Stdout), nil
}
