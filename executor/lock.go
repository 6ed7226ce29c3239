package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/drivers"
)

// DefaultStateDir is where locks and journals live when neither
// --state-dir nor BERTH_STATE_DIR says: $XDG_STATE_HOME/berth when
// XDG_STATE_HOME is set, else /var/lib/berth for root, else
// ~/.local/state/berth (the XDG default).
func DefaultStateDir() string {
	if x := os.Getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "berth")
	}
	if os.Geteuid() == 0 {
		return "/var/lib/berth"
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "berth")
	}
	return filepath.Join(os.TempDir(), "berth-state")
}

// StackLock is a held per-stack lock: an flock on `<stateDir>/<stack>.lock`
// whose content names the holder. The kernel drops it when the holder
// exits, however it exits, so a crashed berth never leaves a stale lock.
type StackLock struct {
	f *os.File
}

// lockHolder is the lock file's content.
type lockHolder struct {
	PID   int       `json:"pid"`
	Host  string    `json:"host"`
	Since time.Time `json:"since"`
}

// LockedError says who holds a stack's lock. It matches drivers.ErrLocked
// with errors.Is.
type LockedError struct {
	Stack string
	PID   int
	Host  string
	Since time.Time
	Path  string
}

func (e *LockedError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("stack %s is locked by another berth process (lock file %s)", e.Stack, e.Path)
	}
	return fmt.Sprintf("stack %s is locked by pid %d on host %s since %s (lock file %s)",
		e.Stack, e.PID, e.Host, e.Since.Format(time.RFC3339), e.Path)
}

// Is makes errors.Is(err, drivers.ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == drivers.ErrLocked }

// LockStack takes the stack's lock without waiting: when another process
// (or another LockStack in this one) holds it, it fails at once with a
// *LockedError naming the holder's pid, host and since.
func LockStack(stateDir, stack string) (*StackLock, error) {
	if err := checkStackName(stack); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("lock stack %s: %w", stack, err)
	}
	p := filepath.Join(stateDir, stack+".lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock stack %s: %w", stack, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			le := &LockedError{Stack: stack, Path: p}
			var h lockHolder
			if b, rerr := io.ReadAll(f); rerr == nil && json.Unmarshal(b, &h) == nil {
				le.PID, le.Host, le.Since = h.PID, h.Host, h.Since
			}
			return nil, le
		}
		return nil, fmt.Errorf("lock stack %s: flock %s: %w", stack, p, err)
	}
	host, _ := os.Hostname()
	b, _ := json.Marshal(lockHolder{PID: os.Getpid(), Host: host, Since: time.Now().UTC().Truncate(time.Second)})
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt(append(b, '\n'), 0)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock stack %s: write %s: %w", stack, p, err)
		}
	}
	return &StackLock{f: f}, nil
}

// Unlock releases the lock. The file stays (removing it would race with a
// process that just opened it); its content is cleared.
func (l *StackLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// checkStackName refuses names that would escape the state dir.
func checkStackName(stack string) error {
	if stack == "" || stack == "." || stack == ".." || strings.ContainsAny(stack, "/\\\x00") {
		return fmt.Errorf("invalid stack name %q for the state dir", stack)
	}
	return nil
}
