// Package waiter is the process that runs an OCI runtime's `create` for
// berth and stays behind as the container's subreaper. It lives in its own
// package with only the standard library and x/sys as dependencies, so its
// init hook runs early in a re-executed berth binary, before the heavy
// packages (JSON schema compilation, image libraries) initialise: about
// 10 ms less per container create on a loaded machine.
//
// The waiter: OCI runtimes forget a container's exit code (after the
// process ends, `state` says "stopped" and nothing more), so berth does what
// conmon does for Podman. `create` is run by a small waiter process, a
// re-exec of the running binary selected by the BERTH_OCI_WAITER
// environment variable in this package's init hook, so it works for the
// berth binary and for test binaries alike:
//
//	berth ──(Cmder)──> sh -c '"$0" "$@" &'  (stage 1: exits at once)
//	                     └─> waiter (stage 2, own session)
//	                           ├─ <runtime> create (stdout/stderr = the log file)
//	                           ├─ reports create's outcome on stdout, closes it
//	                           └─ subreaper: wait4(container pid) -> exit.json
//
// berth's Output() returns when the shell has exited and the waiter has
// closed stdout, i.e. right after create, with create's exit code and
// output in a JSON line. The waiter stays behind as the container's
// subreaper (the container's init is reparented to it when the runtime
// exits), waits for it and writes exit.json into the bundle. On a hybrid
// cgroup host the waiter is also where crun's create gets a private mount
// namespace with /sys/fs/cgroup/unified detached: the waiter's main thread
// unshares its mount namespace, makes it private, checks that it really is
// a new namespace, detaches the cgroup2 mount there and forks crun from
// that thread.
package waiter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Env selects the waiter stage in init; it is never passed on to the
// runtime.
const Env = "BERTH_OCI_WAITER"

// Exit is the runtime's exit status as relayed by the waiter.
type Exit int

func (e Exit) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
func (e Exit) ExitCode() int { return int(e) }

// UnifiedMount is the cgroup2 mount of a hybrid host that crun refuses.
const UnifiedMount = "/sys/fs/cgroup/unified"

func init() {
	if os.Getenv(Env) == "wait" {
		os.Exit(run(os.Args[1:]))
	}
}

// Options are the waiter's flags; the runtime argv follows "--".
type Options struct {
	Log, ExitFile, PidFile string
	DetachUnified          bool
	Argv                   []string
}

// LaunchScript is stage 1: start the waiter in the background and exit.
// The waiter must not hold the caller's stderr pipe, or Output() would
// wait for it.
const LaunchScript = `"$0" "$@" </dev/null 2>/dev/null &`

// Args renders the waiter command line (after /proc/self/exe).
func Args(o Options) []string {
	args := []string{"oci-waiter", "--log", o.Log, "--exit-file", o.ExitFile, "--pid-file", o.PidFile}
	if o.DetachUnified {
		args = append(args, "--detach-unified")
	}
	return append(append(args, "--"), o.Argv...)
}

func parseArgs(args []string) (Options, error) {
	var o Options
	if len(args) > 0 && args[0] == "oci-waiter" {
		args = args[1:]
	}
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--log", "--exit-file", "--pid-file":
			if i+1 >= len(args) {
				return o, fmt.Errorf("waiter: %s needs a value", args[i])
			}
			v := args[i+1]
			switch args[i] {
			case "--log":
				o.Log = v
			case "--exit-file":
				o.ExitFile = v
			case "--pid-file":
				o.PidFile = v
			}
			i++
		case "--detach-unified":
			o.DetachUnified = true
		case "--":
			o.Argv = args[i+1:]
			i = len(args)
		default:
			return o, fmt.Errorf("waiter: unknown argument %q", args[i])
		}
	}
	if o.Log == "" || o.ExitFile == "" || o.PidFile == "" || len(o.Argv) == 0 {
		return o, errors.New("waiter: --log, --exit-file, --pid-file and a runtime command are required")
	}
	return o, nil
}

// Result is what stage 2 tells stage 1 about create.
type Result struct {
	ExitCode int    `json:"exit_code"`
	Output   string `json:"output,omitempty"`
}

// ExitRecord is the exit.json a waiter writes when the container's process
// ends. ExitCode follows the shell convention: 128+N for a signal N.
type ExitRecord struct {
	ExitCode   int       `json:"exit_code"`
	Signal     string    `json:"signal,omitempty"`
	FinishedAt time.Time `json:"finished_at"`
	// Unknown is set when the waiter could not reap the process (it was
	// not reparented to the waiter) and only saw it disappear.
	Unknown bool `json:"unknown,omitempty"`
}

func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, Env+"=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// run is stage 2.
func run(args []string) int {
	enc := json.NewEncoder(os.Stdout)
	fail := func(code int, format string, a ...any) int {
		enc.Encode(Result{ExitCode: code, Output: fmt.Sprintf(format, a...) + "\n"})
		return code
	}
	o, err := parseArgs(args)
	if err != nil {
		return fail(125, "%v", err)
	}
	// The lock on the bundle directory tells berth that this waiter is
	// alive and will write the exit record (see Alive); it goes with the
	// process, and the runtime does not inherit it (close-on-exec).
	if dir, err := os.Open(filepath.Dir(o.ExitFile)); err == nil {
		unix.Flock(int(dir.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		defer runtime.KeepAlive(dir)
	}
	// Own session: no terminal signal or job control reaches the waiter;
	// and no hold on the caller's working directory.
	unix.Setsid()
	os.Chdir("/")
	if o.DetachUnified {
		if err := detachUnified(); err != nil {
			return fail(125, "waiter: %v", err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(125, "waiter: become subreaper: %v", err)
	}
	logf, err := os.OpenFile(o.Log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fail(125, "waiter: %v", err)
	}
	start, _ := logf.Seek(0, io.SeekEnd)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return fail(125, "waiter: %v", err)
	}
	os.Remove(o.ExitFile)
	cmd := exec.Command(o.Argv[0], o.Argv[1:]...)
	cmd.Env = cleanEnv()
	// The container inherits these: a file, never a pipe, or the caller
	// would block until the container exits.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	if err := cmd.Run(); err != nil {
		out := readFrom(o.Log, start)
		code := 125
		var xe *exec.ExitError
		if errors.As(err, &xe) && xe.ExitCode() > 0 {
			code = xe.ExitCode()
		} else {
			out += err.Error() + "\n"
		}
		truncateTo(o.Log, start)
		return fail(code, "%s", strings.TrimRight(out, "\n"))
	}
	pidText, err := os.ReadFile(o.PidFile)
	pid, perr := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil || perr != nil || pid <= 0 {
		return fail(125, "waiter: read pid file %s: %v %v", o.PidFile, err, perr)
	}
	enc.Encode(Result{ExitCode: 0})
	os.Stdout.Close()
	logf.Close()
	devnull.Close()
	rec := waitExit(pid)
	writeExitRecord(o.ExitFile, rec)
	return 0
}

// waitExit reaps pid (reparented to this subreaper) and any other orphan
// that lands here meanwhile.
func waitExit(pid int) ExitRecord {
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// Not our child after all: watch it disappear.
			for unix.Kill(pid, 0) == nil {
				time.Sleep(200 * time.Millisecond)
			}
			return ExitRecord{ExitCode: -1, Unknown: true, FinishedAt: time.Now().UTC()}
		}
		if wpid != pid {
			continue
		}
		rec := ExitRecord{FinishedAt: time.Now().UTC()}
		switch {
		case ws.Exited():
			rec.ExitCode = ws.ExitStatus()
		case ws.Signaled():
			rec.ExitCode = 128 + int(ws.Signal())
			rec.Signal = unix.SignalName(ws.Signal())
		default:
			continue
		}
		return rec
	}
}

// Alive reports whether a waiter holds the lock on dir, the directory of
// its exit record: it is running and will write the record when the
// container's process ends, so there is no need to ask the runtime.
func Alive(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return false
	}
	return errors.Is(err, unix.EWOULDBLOCK)
}

func writeExitRecord(path string, rec ExitRecord) error {
	data, _ := json.Marshal(rec)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadExitRecord returns the recorded exit, or nil when there is none.
func ReadExitRecord(path string) *ExitRecord {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var rec ExitRecord
	if json.Unmarshal(data, &rec) != nil {
		return nil
	}
	return &rec
}

func readFrom(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := f.Seek(off, io.SeekStart); err == nil {
		io.Copy(&b, io.LimitReader(f, 64<<10))
	}
	return b.String()
}

// truncateTo drops a failed create's runtime errors from the container log:
// they are reported to the caller instead.
func truncateTo(path string, off int64) { os.Truncate(path, off) }

// detachUnified gives this thread (which then forks the runtime) a
// private mount namespace without the cgroup2 mount. init runs on the main
// thread with the main goroutine locked to it; LockOSThread keeps it so.
func detachUnified() error {
	runtime.LockOSThread()
	before, err := os.Readlink("/proc/thread-self/ns/mnt")
	if err != nil {
		return err
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	after, err := os.Readlink("/proc/thread-self/ns/mnt")
	if err != nil || after == before {
		return fmt.Errorf("refusing to detach %s: not in a new mount namespace (%s -> %s, %v)", UnifiedMount, before, after, err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Unmount(UnifiedMount, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("detach %s: %w", UnifiedMount, err)
	}
	return nil
}
