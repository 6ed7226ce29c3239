package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// toolShim puts logging wrappers for every lxc-* tool and ip first on the
// PATH berth runs with: each call appends "tool args..." to the returned
// log file, then runs the real tool. before and after map a tool name to
// extra shell run before the real tool and after it (with $rc its exit
// status).
func toolShim(t *testing.T, e *env, before, after map[string]string) string {
	t.Helper()
	lsPath, err := exec.LookPath("lxc-ls")
	if err != nil {
		t.Fatal(err)
	}
	tools, _ := filepath.Glob(filepath.Join(filepath.Dir(lsPath), "lxc-*"))
	if ip, err := exec.LookPath("ip"); err == nil {
		tools = append(tools, ip)
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "calls.log")
	for _, real := range tools {
		name := filepath.Base(real)
		script := fmt.Sprintf("#!/bin/sh\necho \"%s $*\" >> %s\n%s\n%s \"$@\"\nrc=$?\n%s\nexit $rc\n", name, log, before[name], real, after[name])
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.vars["PATH"] = dir + string(os.PathListSeparator) + os.Getenv("PATH")
	return log
}

// shimCalls reads and empties a toolShim log.
func shimCalls(t *testing.T, log string) []string {
	t.Helper()
	data, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	os.Remove(log)
	return strings.FieldsFunc(string(data), func(r rune) bool { return r == '\n' })
}

// mutating reports whether a logged tool call changes anything on the
// host: lxc-ls, lxc-info, lxc-config and lxc-attach (health probes run in
// the container) only read; lxc-cgroup only reads when it gets no value;
// ip only reads when it neither adds, deletes nor sets.
func mutating(call string) bool {
	f := strings.Fields(call)
	switch f[0] {
	case "lxc-ls", "lxc-info", "lxc-config", "lxc-attach":
		return false
	case "lxc-cgroup":
		for i, a := range f {
			if a == "--" {
				return len(f)-i-1 >= 2
			}
		}
		return false
	case "ip":
		for _, a := range f[1:] {
			switch a {
			case "add", "del", "delete", "set", "flush", "change", "replace":
				return true
			}
		}
		return false
	}
	return true
}

// snapshot fingerprints every file berth or LXC keeps about the containers
// of an lxcpath (config, ownership sidecar, anything at the top level):
// path -> size, mode, mtime and content hash. Root filesystems and the
// log files containers append to by themselves are left out.
func snapshot(t *testing.T, lxcpath string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(lxcpath, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel := strings.TrimPrefix(p, lxcpath+"/")
		if d.IsDir() && d.Name() == "rootfs" {
			return fs.SkipDir
		}
		if d.IsDir() || strings.HasSuffix(p, ".log") {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		data, _ := os.ReadFile(p)
		out[rel] = fmt.Sprintf("%d %v %d %x", fi.Size(), fi.Mode(), fi.ModTime().UnixNano(), sha256.Sum256(data))
		return nil
	})
	return out
}

func diffSnapshots(before, after map[string]string) []string {
	var d []string
	for k, v := range before {
		if after[k] != v {
			d = append(d, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			d = append(d, k+" (new)")
		}
	}
	return d
}

// filesHolding lists the regular files under root whose content holds s.
func filesHolding(root, s string) []string {
	var hits []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err != nil || fi.Size() > 16<<20 {
			return nil
		}
		if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(s)) {
			hits = append(hits, p)
		}
		return nil
	})
	return hits
}

// TestLXCUpWithoutChangesAndBrokenFileTouchNothing, on real containers:
// a second `berth up` with nothing changed runs no mutating lxc-*/ip call
// and leaves every config and ownership file as it was; a broken stack
// file (an invalid field, and an instance removed) makes plan, up and down
// exit 1 with FILE:LINE:COL before any tool runs, and nothing live
// changes. Along the way a Proxmox token_secret in the same file never
// shows in any output, in the lxcpath, in the state dir or in a saved
// plan.
func TestLXCUpWithoutChangesAndBrokenFileTouchNothing(t *testing.T) {
	secret := "pve-SECRET-" + randHex(8)
	e, stack := newAuditEnv(t, "au", secret)
	db, web := e.project+"-db", e.project+"-web"
	var outputs strings.Builder
	run := func(file string, wantCode int, args ...string) string {
		t.Helper()
		out, code := e.berth(file, args...)
		outputs.WriteString(out)
		if code != wantCode {
			t.Fatalf("berth %s: exit %d, want %d\n%s", strings.Join(args, " "), code, wantCode, out)
		}
		return out
	}

	run(stack, 0, "up", "--yes")
	if got := containers(t, e.lxcpath); strings.Join(got, " ") != db+" "+web {
		t.Fatalf("after up, lxc-ls lists %v", got)
	}
	pids := map[string]string{}
	for _, n := range []string{db, web} {
		pids[n] = lxcValue(t, e.lxcpath, n, "lxc-info", "-pH")
	}
	log := toolShim(t, e, nil, nil)
	before := snapshot(t, e.lxcpath)

	out := run(stack, 0, "up", "--yes")
	if !strings.Contains(out, "No changes.") {
		t.Errorf("second up does not say there is nothing to do:\n%s", out)
	}
	calls := shimCalls(t, log)
	if len(calls) == 0 {
		t.Fatal("the tool shim saw no call: is berth running the shimmed lxc-ls?")
	}
	for _, c := range calls {
		if mutating(c) {
			t.Errorf("second up with no changes ran a mutating call: %s", c)
		}
	}
	if d := diffSnapshots(before, snapshot(t, e.lxcpath)); len(d) > 0 {
		t.Errorf("second up with no changes rewrote %v", d)
	}

	// A broken file: db's memory is invalid and web is gone (applied, it
	// would delete web).
	src, err := os.ReadFile(stack)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "memory: 64M", "memory: 64X", 1)
	text = text[:strings.Index(text, "  web:\n")]
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(broken, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	line, col := 0, 0
	for i, l := range strings.Split(text, "\n") {
		if c := strings.Index(l, "64X"); c >= 0 {
			line, col = i+1, c+1
		}
	}
	wantErr := fmt.Sprintf("%s:%d:%d: instances.db.memory: ", broken, line, col)
	for _, args := range [][]string{{"plan"}, {"up", "--yes"}, {"down", "--yes"}, {"ps"}} {
		out := run(broken, 1, args...)
		if !strings.Contains(out, wantErr) {
			t.Errorf("berth %s on a broken file does not report %q:\n%s", args[0], wantErr, out)
		}
		if calls := shimCalls(t, log); len(calls) > 0 {
			t.Errorf("berth %s on a broken file ran tools: %v", args[0], calls)
		}
	}
	if d := diffSnapshots(before, snapshot(t, e.lxcpath)); len(d) > 0 {
		t.Errorf("commands on a broken file changed %v", d)
	}
	if got := containers(t, e.lxcpath); strings.Join(got, " ") != db+" "+web {
		t.Errorf("after commands on a broken file, lxc-ls lists %v", got)
	}
	for n, pid := range pids {
		if got := lxcValue(t, e.lxcpath, n, "lxc-info", "-pH"); got != pid {
			t.Errorf("%s init pid %s -> %s: restarted", n, pid, got)
		}
	}

	// berth logs -f follows db's console log.
	run(stack, 0, "exec", "db", "--", "sh", "-c", "echo started > /dev/console")
	followLogs(t, e, stack, "db", "sh -c 'echo later-line > /dev/console'")

	// Every read-only command, a saved plan, then the secret search.
	planFile := filepath.Join(t.TempDir(), "audit.plan")
	for _, args := range [][]string{{"validate"}, {"config"}, {"config", "--format", "json"}, {"plan", "--json"},
		{"plan", "--out", planFile}, {"ps"}, {"ps", "--json"}, {"graph"}, {"logs"}, {"exec", "db", "--", "env"}} {
		run(stack, 0, args...)
	}
	var where []string
	where = append(where, filesHolding(e.lxcpath, secret)...)
	where = append(where, filesHolding(e.stateDir, secret)...)
	where = append(where, filesHolding(planFile, secret)...)
	run(stack, 0, "down", "--yes")
	where = append(where, filesHolding(e.stateDir, secret)...)
	if strings.Contains(outputs.String(), secret) {
		where = append(where, "command output")
	}
	if len(where) > 0 {
		t.Errorf("the token_secret shows in %v", where)
	}
	if !strings.Contains(outputs.String(), "********") {
		t.Errorf("berth config does not show the secret masked")
	}
}

// TestLXCCrashMidCreateConverges kills `berth up` with SIGKILL while db is
// being created: right after lxc-create made it, before berth wrote
// anything else about it, and before lxc-create ran at all, when db is
// only the directory berth made with its create-intent record (the
// windows a crash or power loss can hit). The next `berth up` must report
// the interrupted create, converge to the stack file (no name clash with
// its own half-made container, no duplicate) and `down` must then leave an
// empty lxcpath and state dir.
func TestLXCCrashMidCreateConverges(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, after string // lxc-create shim hooks for db (see toolShim)
		lxcls         bool   // db is a container lxc-ls lists after the crash
	}{
		{name: "after lxc-create", after: "[ $rc = 0 ] && { echo $$ > %[2]s; exec sleep 600; }", lxcls: true},
		{name: "before lxc-create", before: "echo $$ > %[2]s; exec sleep 600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, stack := newAuditEnv(t, "cr", "unused")
			db, web := e.project+"-db", e.project+"-web"
			marker := filepath.Join(t.TempDir(), "created")
			hook := func(body string) map[string]string {
				if body == "" {
					return nil
				}
				return map[string]string{"lxc-create": fmt.Sprintf("case \" $* \" in *\" %[1]s \"*) "+body+";; esac", db, marker)}
			}
			toolShim(t, e, hook(tc.before), hook(tc.after))

			cmd, _, pid := e.startUp(stack, marker)
			cmd.Process.Kill()
			cmd.Wait()
			syscall.Kill(pid, syscall.SIGKILL)
			delete(e.vars, "PATH")
			want := ""
			if tc.lxcls {
				want = db
			}
			if got := containers(t, e.lxcpath); strings.Join(got, " ") != want {
				t.Fatalf("after the crash, lxc-ls lists %v, want %q", got, want)
			}
			if left := dirEntries(e.lxcpath); strings.Join(left, " ") != db {
				t.Fatalf("after the crash, the lxcpath holds %v, want the half-made %s", left, db)
			}

			o, code := e.berth(stack, "up", "--yes")
			if code != 0 {
				t.Fatalf("up after a crash mid-create: exit %d\n%s", code, o)
			}
			if !strings.Contains(o, "did not finish") || !strings.Contains(o, "create "+db) {
				t.Errorf("up after the crash does not report the interrupted create of %s:\n%s", db, o)
			}
			if got := containers(t, e.lxcpath); strings.Join(got, " ") != db+" "+web {
				t.Errorf("after recovery, lxc-ls lists %v, want %s %s", got, db, web)
			}
			rows := ps(t, e, stack)
			for _, inst := range []string{"db", "web"} {
				if rows[inst].State != "running" {
					t.Errorf("after recovery, ps %s = %+v, want running", inst, rows[inst])
				}
			}
			if o, code := e.berth(stack, "plan", "--detailed-exitcode"); code != 0 {
				t.Errorf("plan after recovery: exit %d, want 0\n%s", code, o)
			}

			e.mustBerth(stack, "down", "--yes")
			if left := dirEntries(e.lxcpath); len(left) != 0 {
				t.Errorf("after down, the lxcpath still holds %v", left)
			}
			if left := stateFiles(t, e.stateDir); len(left) != 0 {
				t.Errorf("after down, the state dir still holds %v", left)
			}
		})
	}
}

// TestLXCInterruptedUpRollsBack sends one SIGINT to `berth up` on real
// containers while web's lxc-create hangs (db is already up): berth must
// cancel the create, roll db back and exit 130, leaving no container and
// nothing in the lxcpath.
func TestLXCInterruptedUpRollsBack(t *testing.T) {
	e, stack := newAuditEnv(t, "in", "unused")
	db, web := e.project+"-db", e.project+"-web"
	marker := filepath.Join(t.TempDir(), "hanging")
	toolShim(t, e, map[string]string{"lxc-create": fmt.Sprintf(
		"case \" $* \" in *\" %s \"*) echo $$ > %s; exec sleep 600;; esac", web, marker)}, nil)

	cmd, out, pid := e.startUp(stack, marker)
	defer syscall.Kill(pid, syscall.SIGKILL)
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute): // only keeps a hung berth from hanging the suite
		cmd.Process.Kill()
		t.Fatalf("berth up did not end after SIGINT:\n%s", out.String())
	}
	code := 0
	if x, ok := err.(*exec.ExitError); ok {
		code = x.ExitCode()
	}
	if code != 130 || !strings.Contains(out.String(), "Interrupted.") || !strings.Contains(out.String(), "delete "+db) {
		t.Errorf("interrupted up: exit %d, want 130 with db rolled back:\n%s", code, out.String())
	}
	delete(e.vars, "PATH")
	if got := containers(t, e.lxcpath); len(got) != 0 {
		t.Errorf("after the interrupted up, lxc-ls lists %v", got)
	}
	if left := dirEntries(e.lxcpath); len(left) != 0 {
		t.Errorf("after the interrupted up, the lxcpath holds %v", left)
	}
}

// TestLXCDriftCorrected: a memory limit changed on a running container
// outside berth (lxc-cgroup) shows in `berth plan` as drift (exit 2 with
// --detailed-exitcode), and applying the saved plan (`plan --out`, then
// `up FILE`) puts the file's limit back in place without restarting the
// container; the same plan applied again is refused as stale.
func TestLXCDriftCorrected(t *testing.T) {
	e, stack := newAuditEnv(t, "dr", "unused")
	db := e.project + "-db"
	e.mustBerth(stack, "up", "--yes")
	key := "memory.limit_in_bytes"
	if _, err := exec.Command("lxc-cgroup", "-P", e.lxcpath, "-n", db, key).Output(); err != nil {
		key = "memory.max" // a pure cgroup2 host
	}
	pid := lxcValue(t, e.lxcpath, db, "lxc-info", "-pH")
	lxcValue(t, e.lxcpath, db, "lxc-cgroup", key, "100663296") // 96M, outside berth
	out, code := e.berth(stack, "plan", "--detailed-exitcode")
	if code != 2 || !strings.Contains(out, "drift") || !strings.Contains(out, "memory") {
		t.Errorf("plan after a limit changed outside berth: exit %d, want 2 with a memory drift\n%s", code, out)
	}
	// Through a saved plan: applied once, then refused as stale.
	planFile := filepath.Join(t.TempDir(), "drift.plan")
	e.mustBerth(stack, "plan", "--out", planFile)
	e.mustBerth(stack, "up", planFile)
	if out, code := e.berth(stack, "up", planFile); code != 1 || !strings.Contains(out, "stale") {
		t.Errorf("the saved plan applied a second time: exit %d, want 1 (stale)\n%s", code, out)
	}
	if got := lxcValue(t, e.lxcpath, db, "lxc-cgroup", key); got != "67108864" {
		t.Errorf("after up, %s = %s, want the file's 64M (67108864)", key, got)
	}
	if got := lxcValue(t, e.lxcpath, db, "lxc-info", "-pH"); got != pid {
		t.Errorf("correcting the drift restarted db: pid %s -> %s", pid, got)
	}
	if out, code := e.berth(stack, "plan", "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after the correction: exit %d\n%s", code, out)
	}

	// A container stopped outside berth is started again by up.
	web := e.project + "-web"
	if out, err := exec.Command("lxc-stop", "-P", e.lxcpath, "-n", web, "-k").CombinedOutput(); err != nil {
		t.Fatalf("lxc-stop: %v: %s", err, out)
	}
	if out, code := e.berth(stack, "plan", "--detailed-exitcode"); code != 2 || !strings.Contains(out, "start web") {
		t.Errorf("plan after web was stopped outside berth: exit %d, want 2 with a start of web\n%s", code, out)
	}
	e.mustBerth(stack, "up", "--yes")
	if got := lxcValue(t, e.lxcpath, web, "lxc-info", "-sH"); got != "RUNNING" {
		t.Errorf("after up, web is %s, want RUNNING", got)
	}
	e.mustBerth(stack, "down", "--yes")
}

// TestLXCRollbackRemovesTheBridge: a failed up whose first container made
// berth create the provider's bridge rolls back to the host as it was:
// no container, nothing in the lxcpath, no bridge.
func TestLXCRollbackRemovesTheBridge(t *testing.T) {
	e := newEnv(t)
	e.withBridge()
	e.project = "rbb" + randHex(3)
	broken := filepath.Join(t.TempDir(), "broken.tar.xz")
	if err := os.WriteFile(broken, []byte("this is not a tarball\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.vars["BROKEN"] = broken
	out, code := e.berth("testdata/lxc-rollback-bridge.yaml", "up", "--yes")
	if code == 0 || !strings.Contains(out, "delete "+e.project+"-first") {
		t.Fatalf("up with a broken template: exit %d, want a failure that rolls first back\n%s", code, out)
	}
	if got := containers(t, e.lxcpath); len(got) != 0 {
		t.Errorf("after the failed up, lxc-ls lists %v", got)
	}
	if left := dirEntries(e.lxcpath); len(left) != 0 {
		t.Errorf("after the failed up, the lxcpath holds %v", left)
	}
	if _, err := os.Stat("/sys/class/net/" + e.vars["BRIDGE"]); err == nil {
		t.Errorf("after the failed up, the bridge %s berth created is still there", e.vars["BRIDGE"])
	}
}

// startUp starts `berth up --yes` in the background and waits until a
// tool shim writes its pid to marker (the shim then hangs), so a test can
// crash or interrupt berth at that exact point. extraEnv is added to the
// environment. Polling, not a timed assertion: the deadline only keeps a
// broken run from hanging the suite.
func (e *env) startUp(stack, marker string, extraEnv ...string) (cmd *exec.Cmd, out *bytes.Buffer, shimPid int) {
	e.t.Helper()
	cmd = exec.Command(berthBin, "-f", stack, "--state-dir", e.stateDir, "-p", e.project, "up", "--yes")
	cmd.Env = append(append(os.Environ(), "BERTH_PROGRESS=plain"), extraEnv...)
	for k, v := range e.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		data, _ := os.ReadFile(marker)
		if p, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			return cmd, out, p
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			e.t.Fatalf("the shimmed tool never reached its marker:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newAuditEnv is a real-LXC test's env for testdata/lxc-audit.yaml: the
// project name prefix+random and PVE_SECRET (the file's Proxmox provider
// token, never contacted) set to pveSecret. It returns the stack path.
func newAuditEnv(t *testing.T, prefix, pveSecret string) (*env, string) {
	t.Helper()
	e := newEnv(t)
	e.project = prefix + randHex(3)
	e.vars["PVE_SECRET"] = pveSecret
	return e, "testdata/lxc-audit.yaml"
}
