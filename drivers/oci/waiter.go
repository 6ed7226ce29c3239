package oci

// The waiter: OCI runtimes forget a container's exit code (after the
// process ends, `state` says "stopped" and nothing more), so berth does what
// conmon does for Podman. `create` is run by a small waiter process, a
// re-exec of the running binary (/proc/self/exe) selected by the
// BERTH_OCI_WAITER environment variable in this package's init hook, so it
// works for the berth binary and for test binaries alike:
//
//	berth ──(Cmder)──> stage 1 "launch" ──(setsid)──> stage 2 "wait"
//	                                                    ├─ <runtime> create (stdout/stderr = the log file)
//	                                                    └─ subreaper: wait4(container pid) -> exit.json
//
// Stage 1 returns as soon as create finished, with create's exit code and
// output, so berth sees an ordinary command. Stage 2 stays behind as the
// container's subreaper (the container's init is reparented to it when the
// runtime exits), waits for it and writes exit.json into the bundle. On a
// hybrid cgroup host stage 2 is also where crun's create gets a private
// mount namespace with /sys/fs/cgroup/unified detached.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// waiterEnv selects the waiter stage in init; it is never passed on to the
// runtime.
const waiterEnv = "BERTH_OCI_WAITER"

// selfExe re-executes the running binary.
const selfExe = "/proc/self/exe"

// unifiedMount is the cgroup2 mount of a hybrid host that crun refuses.
const unifiedMount = "/sys/fs/cgroup/unified"

func init() {
	switch os.Getenv(waiterEnv) {
	case "launch":
		os.Exit(launchWaiter(os.Args[1:]))
	case "wait":
		os.Exit(runWaiter(os.Args[1:]))
	}
}

// waiterOptions are the waiter's flags; the runtime argv follows "--".
type waiterOptions struct {
	log, exitFile, pidFile string
	detachUnified          bool
	argv                   []string
}

// waiterArgs renders the waiter command line (after /proc/self/exe).
func waiterArgs(o waiterOptions) []string {
	args := []string{"oci-waiter", "--log", o.log, "--exit-file", o.exitFile, "--pid-file", o.pidFile}
	if o.detachUnified {
		args = append(args, "--detach-unified")
	}
	return append(append(args, "--"), o.argv...)
}

func parseWaiterArgs(args []string) (waiterOptions, error) {
	var o waiterOptions
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
				o.log = v
			case "--exit-file":
				o.exitFile = v
			case "--pid-file":
				o.pidFile = v
			}
			i++
		case "--detach-unified":
			o.detachUnified = true
		case "--":
			o.argv = args[i+1:]
			i = len(args)
		default:
			return o, fmt.Errorf("waiter: unknown argument %q", args[i])
		}
	}
	if o.log == "" || o.exitFile == "" || o.pidFile == "" || len(o.argv) == 0 {
		return o, errors.New("waiter: --log, --exit-file, --pid-file and a runtime command are required")
	}
	return o, nil
}

// waiterResult is what stage 2 tells stage 1 about create.
type waiterResult struct {
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
		if !strings.HasPrefix(kv, waiterEnv+"=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// launchWaiter is stage 1: start stage 2 in its own session (and mount
// namespace when asked), relay create's outcome, exit.
func launchWaiter(args []string) int {
	o, err := parseWaiterArgs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 125
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "waiter:", err)
		return 125
	}
	cmd := exec.Command(selfExe, args...)
	cmd.Env = cleanEnv(waiterEnv + "=wait")
	cmd.Stdout = w
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if o.detachUnified {
		// Go makes / recursively private in the new namespace, so the
		// unmount below never reaches the host.
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "waiter: start:", err)
		return 125
	}
	w.Close()
	var res waiterResult
	derr := json.NewDecoder(r).Decode(&res)
	if derr != nil {
		// Stage 2 died before reporting: reap it and say so.
		werr := cmd.Wait()
		fmt.Fprintf(os.Stderr, "waiter: no result from stage 2 (%v, %v)\n", derr, werr)
		return 125
	}
	cmd.Process.Release()
	if res.Output != "" {
		io.WriteString(os.Stderr, res.Output)
	}
	return res.ExitCode
}

// runWaiter is stage 2.
func runWaiter(args []string) int {
	enc := json.NewEncoder(os.Stdout)
	fail := func(code int, format string, a ...any) int {
		enc.Encode(waiterResult{ExitCode: code, Output: fmt.Sprintf(format, a...) + "\n"})
		return code
	}
	o, err := parseWaiterArgs(args)
	if err != nil {
		return fail(125, "%v", err)
	}
	if o.detachUnified {
		if same, err := sameMountNamespaceAsParent(); err != nil || same {
			return fail(125, "waiter: refusing to detach %s: not in a private mount namespace (%v)", unifiedMount, err)
		}
		if err := unix.Unmount(unifiedMount, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fail(125, "waiter: detach %s: %v", unifiedMount, err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(125, "waiter: become subreaper: %v", err)
	}
	logf, err := os.OpenFile(o.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fail(125, "waiter: %v", err)
	}
	start, _ := logf.Seek(0, io.SeekEnd)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return fail(125, "waiter: %v", err)
	}
	os.Remove(o.exitFile)
	cmd := exec.Command(o.argv[0], o.argv[1:]...)
	cmd.Env = cleanEnv()
	// The container inherits these: a file, never a pipe, or the caller
	// would block until the container exits.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	if err := cmd.Run(); err != nil {
		out := readFrom(o.log, start)
		code := 125
		var xe *exec.ExitError
		if errors.As(err, &xe) && xe.ExitCode() > 0 {
			code = xe.ExitCode()
		} else {
			out += err.Error() + "\n"
		}
		truncateTo(o.log, start)
		return fail(code, "%s", strings.TrimRight(out, "\n"))
	}
	pidText, err := os.ReadFile(o.pidFile)
	pid, perr := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil || perr != nil || pid <= 0 {
		return fail(125, "waiter: read pid file %s: %v %v", o.pidFile, err, perr)
	}
	enc.Encode(waiterResult{ExitCode: 0})
	os.Stdout.Close()
	logf.Close()
	devnull.Close()
	rec := waitExit(pid)
	writeExitRecord(o.exitFile, rec)
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

func writeExitRecord(path string, rec ExitRecord) error {
	data, _ := json.Marshal(rec)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readExitRecord returns the recorded exit, or nil when there is none.
func readExitRecord(path string) *ExitRecord {
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

// sameMountNamespaceAsParent guards the unmount: stage 1 (the parent,
// still waiting for the result) is in the caller's namespace, so stage 2
// must be in a different one.
func sameMountNamespaceAsParent() (bool, error) {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return false, err
	}
	initNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid()))
	if err != nil {
		return false, err
	}
	return self == initNS, nil
}

// DetectHybridCgroups reports a hybrid cgroup host, where crun refuses to
// run: /sys/fs/cgroup is a tmpfs (cgroup v1 layout) and the cgroup2 mount
// at /sys/fs/cgroup/unified has controllers.
func DetectHybridCgroups() bool {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		return false
	}
	data, err := os.ReadFile(unifiedMount + "/cgroup.controllers")
	return err == nil && strings.TrimSpace(string(data)) != ""
}
