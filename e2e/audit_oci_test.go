package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOCIUpWithoutChangesAndNoSecret, on a real crun container: a second
// `berth up` with nothing changed runs no crun call other than
// --version, state, list and exec (health probes), and a Proxmox token_secret in the same
// file shows in no output and in no file under the OCI root (bundles,
// config.json annotations, logs) or the state dir.
func TestOCIUpWithoutChangesAndNoSecret(t *testing.T) {
	secret := "pve-SECRET-" + randHex(8)
	e, root, ociRoot := newOCIEnv(t, "oa", secret)
	stack := "testdata/oci-audit.yaml"
	var outputs strings.Builder
	run := func(args ...string) string {
		t.Helper()
		out := e.mustBerth(stack, args...)
		outputs.WriteString(out)
		return out
	}
	run("up", "--yes")

	// Log every crun call of the second up.
	real, err := exec.LookPath("crun")
	if err != nil {
		t.Fatal(err)
	}
	shim := t.TempDir()
	log := filepath.Join(shim, "calls.log")
	script := fmt.Sprintf("#!/bin/sh\necho \"crun $*\" >> %s\nexec %s \"$@\"\n", log, real)
	if err := os.WriteFile(filepath.Join(shim, "crun"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e.vars["PATH"] = shim + string(os.PathListSeparator) + os.Getenv("PATH")
	bundles := snapshot(t, filepath.Join(ociRoot, "bundles"))
	if out := run("up", "--yes"); !strings.Contains(out, "No changes.") {
		t.Errorf("second up does not say there is nothing to do:\n%s", out)
	}
	calls := shimCalls(t, log)
	if len(calls) == 0 {
		t.Fatal("the crun shim saw no call: is berth running the shimmed crun?")
	}
	for _, c := range calls {
		verb := ""
		for _, f := range strings.Fields(c)[1:] {
			if !strings.HasPrefix(f, "-") && !strings.HasPrefix(f, "/") {
				verb = f
				break
			}
		}
		switch verb {
		case "state", "list", "exec", "ps":
		case "":
			if !strings.Contains(c, "--version") {
				t.Errorf("second up with no changes ran crun without a command: %s", c)
			}
		default:
			t.Errorf("second up with no changes ran a mutating crun call: %s", c)
		}
	}
	if d := diffSnapshots(bundles, snapshot(t, filepath.Join(ociRoot, "bundles"))); len(d) > 0 {
		t.Errorf("second up with no changes rewrote %v", d)
	}
	delete(e.vars, "PATH")

	followLogs(t, e, stack, "web", "sh -c 'echo later-line >> /proc/1/fd/1'")

	planFile := filepath.Join(root, "audit.plan")
	for _, args := range [][]string{{"config"}, {"plan", "--json"}, {"plan", "--out", planFile}, {"ps", "--json"}, {"logs", "web"}, {"exec", "web", "--", "env"}} {
		run(args...)
	}
	var where []string
	for _, dir := range []string{ociRoot, e.stateDir, planFile} {
		where = append(where, filesHolding(dir, secret)...)
	}
	run("down", "--yes")
	where = append(where, filesHolding(e.stateDir, secret)...)
	if strings.Contains(outputs.String(), secret) {
		where = append(where, "command output")
	}
	if len(where) > 0 {
		t.Errorf("the token_secret shows in %v", where)
	}
	if !strings.Contains(outputs.String(), "********") {
		t.Error("berth config does not show the secret masked")
	}
}

// followLogs runs `berth logs -f inst`, waits for the container's first
// line ("started"), makes the container's main process print "later-line"
// through `berth exec inst -- sh -c write`, waits for that line to come
// through the follow, then interrupts the follow, which must end with
// exit 0.
func followLogs(t *testing.T, e *env, stack, inst, write string) {
	t.Helper()
	cmd := exec.Command(berthBin, "-f", stack, "--state-dir", e.stateDir, "-p", e.project, "logs", "-f", inst)
	cmd.Env = os.Environ()
	for k, v := range e.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine := func(want string) {
		t.Helper()
		timeout := time.After(time.Minute) // only keeps a broken follow from hanging the suite
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					cmd.Wait()
					t.Fatalf("logs -f %s ended before %q:\n%s", inst, want, errb.String())
				}
				if strings.Contains(l, want) {
					return
				}
			case <-timeout:
				cmd.Process.Kill()
				t.Fatalf("logs -f %s never showed %q", inst, want)
			}
		}
	}
	waitLine("started")
	e.mustBerth(stack, "exec", inst, "--", "sh", "-c", strings.TrimSuffix(strings.TrimPrefix(write, "sh -c '"), "'"))
	waitLine("later-line")
	cmd.Process.Signal(syscall.SIGINT)
	go func() {
		for range lines {
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Errorf("logs -f %s after Ctrl-C: %v, want exit 0\n%s", inst, err, errb.String())
	}
}

// TestOCICrashMidCreateConverges kills `berth up` with SIGKILL right after
// `crun create` made web (before berth started it or noted anything else),
// and, separately, right before `crun create` ran (bundle written).
// The next `berth up` must report the interrupted create and converge:
// web running, no duplicate; `down` then leaves no container or bundle.
func TestOCICrashMidCreateConverges(t *testing.T) {
	// after: berth dies once `crun create` made the container; before:
	// once the bundle is written and `crun create` is about to run.
	for _, when := range []string{"after", "before"} {
		t.Run(when, func(t *testing.T) { ociCrashMidCreate(t, when == "before") })
	}
}

func ociCrashMidCreate(t *testing.T, before bool) {
	e, _, ociRoot := newOCIEnv(t, "oc", "unused")
	crunState := filepath.Join(ociRoot, "state", "crun")
	stack := "testdata/oci-audit.yaml"
	real, err := exec.LookPath("crun")
	if err != nil {
		t.Fatal(err)
	}
	shim := t.TempDir()
	marker := filepath.Join(t.TempDir(), "created")
	script := fmt.Sprintf("#!/bin/sh\n%s \"$@\"\nrc=$?\ncase \" $* \" in *\" create \"*) [ $rc = 0 ] && { echo $$ > %s; exec sleep 600; };; esac\nexit $rc\n", real, marker)
	if before {
		script = fmt.Sprintf("#!/bin/sh\ncase \" $* \" in *\" create \"*) echo $$ > %s; exec sleep 600;; esac\nexec %s \"$@\"\n", marker, real)
	}
	if err := os.WriteFile(filepath.Join(shim, "crun"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd, _, pid := e.startUp(stack, marker, "PATH="+shim+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Process.Kill()
	cmd.Wait()
	syscall.Kill(pid, syscall.SIGKILL)

	o, code := e.berth(stack, "up", "--yes")
	if code != 0 {
		t.Fatalf("up after a crash mid-create: exit %d\n%s", code, o)
	}
	if !strings.Contains(o, "did not finish") {
		t.Errorf("up after the crash does not report the interrupted run:\n%s", o)
	}
	if r := ps(t, e, stack)["web"]; r.State != "running" {
		t.Errorf("after recovery, ps web = %+v, want running", r)
	}
	if ids := strings.Fields(mustOut(exec.Command("crun", "--root", crunState, "list", "-q"))); len(ids) != 1 {
		t.Errorf("after recovery, crun lists %v, want one container", ids)
	}
	e.mustBerth(stack, "down", "--yes")
	if ids := strings.Fields(mustOut(exec.Command("crun", "--root", crunState, "list", "-q"))); len(ids) != 0 {
		t.Errorf("after down, crun lists %v", ids)
	}
	if left, _ := filepath.Glob(filepath.Join(ociRoot, "bundles", "crun", "*")); len(left) > 0 {
		t.Errorf("after down, bundles left: %v", left)
	}
}

// newOCIEnv is a real-crun test's private world: a busybox rootfs
// (ROOTFS), an OCI root (BERTH_OCI_ROOT) and a state dir under one temp
// dir, the project name prefix+random and PVE_SECRET set to pveSecret.
// Containers and overlay mounts left behind are removed at the end.
func newOCIEnv(t *testing.T, prefix, pveSecret string) (e *env, root, ociRoot string) {
	t.Helper()
	requireRuntime(t, "crun")
	root = t.TempDir()
	rootfs := mkrootfs(t, root)
	ociRoot = filepath.Join(root, "oci")
	e = &env{t: t, stateDir: filepath.Join(root, "state"), project: prefix + randHex(3),
		vars: map[string]string{"ROOTFS": rootfs, "BERTH_OCI_ROOT": ociRoot, "PVE_SECRET": pveSecret}}
	crunState := filepath.Join(ociRoot, "state", "crun")
	t.Cleanup(func() {
		for _, id := range strings.Fields(mustOut(exec.Command("crun", "--root", crunState, "list", "-q"))) {
			exec.Command("crun", "--root", crunState, "delete", "-f", id).Run()
		}
		mounts, _ := filepath.Glob(filepath.Join(ociRoot, "bundles", "crun", "*", "rootfs"))
		for _, m := range mounts {
			exec.Command("umount", "-l", m).Run()
		}
	})
	return e, root, ociRoot
}
