package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/drivers/hostcmd"
	"github.com/berth-dev/berth/manifest"
)

// Recorded real runtime output lives in testdata/<runtime>/: the
// recordings (argv, stdout, stderr, exit code) of one scenario run with
// real crun/runc, and the small files of its bundles. Regenerate with:
//
//	go test ./drivers/oci -run TestRecordFixtures -record
var record = flag.Bool("record", false, "re-record testdata/<runtime>/ from the real runtimes")

// rootToken replaces the scenario's temporary root in recordings.
const rootToken = "@ROOT@"

// exeToken replaces the test binary's path (the waiter) in recordings.
const exeToken = "@EXE@"

// recorder is a Cmder that runs commands for real and keeps recordings.
type recorder struct {
	inner hostcmd.Cmder
	mu    sync.Mutex
	recs  []hostcmd.Recording
}

func (r *recorder) Command(ctx context.Context, name string, args ...string) hostcmd.Cmd {
	return &recCmd{r: r, argv: append([]string{name}, args...), inner: r.inner.Command(ctx, name, args...)}
}

type recCmd struct {
	r              *recorder
	argv           []string
	inner          hostcmd.Cmd
	stdout, stderr io.Writer
}

func (c *recCmd) SetEnv(env ...string) Cmd_                  { c.inner.SetEnv(env...); return c }
func (c *recCmd) SetStdin(r io.Reader) Cmd_                  { c.inner.SetStdin(r); return c }
func (c *recCmd) SetStdout(w io.Writer) Cmd_                 { c.stdout = w; return c }
func (c *recCmd) SetStderr(w io.Writer) Cmd_                 { c.stderr = w; return c }
func (c *recCmd) SetSysProcAttr(a *syscall.SysProcAttr) Cmd_ { c.inner.SetSysProcAttr(a); return c }

// Cmd_ keeps the method set lines short.
type Cmd_ = hostcmd.Cmd

func (c *recCmd) save(stdout, stderr []byte, err error) {
	rec := hostcmd.Recording{Argv: c.argv, Stdout: string(stdout), Stderr: string(stderr)}
	if err != nil {
		rec.ExitCode = hostcmd.ExitCode(err)
		var re *hostcmd.RunError
		if errors.As(err, &re) && len(stderr) == 0 {
			rec.Stderr = string(re.Output)
		}
	}
	c.r.mu.Lock()
	c.r.recs = append(c.r.recs, rec)
	c.r.mu.Unlock()
}

func (c *recCmd) Run() error {
	var out, errb bytes.Buffer
	if c.stdout != nil {
		c.inner.SetStdout(io.MultiWriter(&out, c.stdout))
	}
	if c.stderr != nil {
		c.inner.SetStderr(io.MultiWriter(&errb, c.stderr))
	}
	err := c.inner.Run()
	c.save(out.Bytes(), errb.Bytes(), err)
	return err
}

func (c *recCmd) Output() ([]byte, error) {
	out, err := c.inner.Output()
	c.save(out, nil, err)
	return out, err
}

// scenario drives a runtime through the states the replay tests check:
// a created, b running, c exited 7, s stopped by berth, and the runtime's
// error answers (exists, not found, not running).
func scenario(t *testing.T, d *Driver, rootfs string) {
	ctx := context.Background()
	mk := func(name string, cmd ...string) drivers.ObjectRef {
		ref, err := d.Create(ctx, target(name, &manifest.Instance{Image: "dir:" + rootfs, Command: cmd, Memory: 32 * manifest.MiB}))
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
	mk("a", "sleep", "1000")
	b := mk("b", "sleep", "1000")
	c := mk("c", "sh", "-c", "exit 7")
	s := mk("s", "sleep", "1000")
	for _, r := range []drivers.ObjectRef{b, c, s} {
		if err := d.Start(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Stop(ctx, s, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { st, err := d.state(ctx, "t-c"); return err == nil && st.Status == statusStopped })
	d.awaitExitRecord(ctx, "t-c")
	if _, err := d.Observe(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	// Error answers, through the same internal calls the replay makes.
	_ = d.createContainer(ctx, "t-a", d.bundleDir("t-a"))
	_, _ = d.state(ctx, "nope")
	_ = d.run(ctx, "nope", "kill", "nope", "TERM")
	_ = d.run(ctx, "t-c", "start", "t-c")
	_ = d.run(ctx, "t-c", "kill", "t-c", "TERM")
	_ = d.run(ctx, "t-b", "delete", "t-b")
}

// TestRecordFixtures re-records testdata/<runtime>/ (only with -record).
func TestRecordFixtures(t *testing.T) {
	if !*record {
		t.Skip("re-recording runs only with -record")
	}
	for _, rt := range []string{"crun", "runc"} {
		t.Run(rt, func(t *testing.T) {
			requireTool(t, rt, rt)
			rootfs := busyboxRootfs(t)
			root := t.TempDir()
			rec := &recorder{inner: hostcmd.Local{}}
			d, err := New(Config{Runtime: rt, Root: root, CacheDir: filepath.Join(root, "images")}, rec)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				obs, _ := d.Observe(context.Background(), "")
				for _, o := range obs {
					d.Delete(context.Background(), o.Ref)
				}
			}()
			scenario(t, d, rootfs)
			out := filepath.Join("testdata", rt)
			os.RemoveAll(out)
			for _, id := range []string{"t-a", "t-b", "t-c", "t-s"} {
				for _, f := range []string{sidecarFileName, exitFileName, stoppedMarker, configFileName} {
					data, err := os.ReadFile(filepath.Join(d.bundleDir(id), f))
					if err != nil {
						continue
					}
					data = bytes.ReplaceAll(data, []byte(root), []byte(rootToken))
					dst := filepath.Join(out, "bundles", id, f)
					os.MkdirAll(filepath.Dir(dst), 0o755)
					if err := os.WriteFile(dst, data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			data, _ := json.MarshalIndent(rec.recs, "", "  ")
			data = bytes.ReplaceAll(data, []byte(root), []byte(rootToken))
			data = bytes.ReplaceAll(data, []byte(d.exe), []byte(exeToken))
			if err := os.WriteFile(filepath.Join(out, "recordings.json"), append(data, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// replayDriver loads testdata/<rt>/ under a fresh root and returns a driver
// that answers from the recordings.
func replayDriver(t *testing.T, rt string) (*Driver, *hostcmd.Replayer) {
	t.Helper()
	root := t.TempDir()
	data, err := os.ReadFile(filepath.Join("testdata", rt, "recordings.json"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []hostcmd.Recording
	exe, _ := os.Executable()
	data = bytes.ReplaceAll(data, []byte(exeToken), []byte(exe))
	if err := json.Unmarshal(bytes.ReplaceAll(data, []byte(rootToken), []byte(root)), &recs); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join("testdata", rt, "bundles")
	filepath.WalkDir(src, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, _ := os.ReadFile(p)
		dst := filepath.Join(root, "bundles", rt, rel)
		os.MkdirAll(filepath.Dir(dst), 0o755)
		return os.WriteFile(dst, bytes.ReplaceAll(b, []byte(rootToken), []byte(root)), 0o644)
	})
	// The Replayer answers with the first match: keep the last recording
	// of each argv (the scenario's error answers come last).
	last := map[string]int{}
	for i, r := range recs {
		last[strings.Join(r.Argv, "\x00")] = i
	}
	var uniq []hostcmd.Recording
	for i, r := range recs {
		if last[strings.Join(r.Argv, "\x00")] == i {
			uniq = append(uniq, r)
		}
	}
	rep := hostcmd.NewReplayer(uniq...)
	// Recorded on a hybrid cgroup host or not: replay the same way.
	hybrid := bytes.Contains(data, []byte("--detach-unified"))
	d, err := New(Config{Runtime: rt, Root: root, CacheDir: filepath.Join(root, "images"), Hybrid: &hybrid}, rep)
	if err != nil {
		t.Fatal(err)
	}
	return d, rep
}

// TestReplayObserve maps recorded `list -f json` output plus bundle files to
// observed states, owners and exit codes.
func TestReplayObserve(t *testing.T) {
	type want struct {
		state drivers.State
		code  int // -1: no exit code
	}
	wants := map[string]want{
		"t-a": {drivers.StateCreated, -1},
		"t-b": {drivers.StateRunning, -1},
		"t-c": {drivers.StateExited, 7},
		"t-s": {drivers.StateStopped, -1},
	}
	for _, rt := range []string{"crun", "runc"} {
		t.Run(rt, func(t *testing.T) {
			d, rep := replayDriver(t, rt)
			if d.flavor != rt {
				t.Errorf("flavor from recorded --version = %q, want %q", d.flavor, rt)
			}
			obs, err := d.Observe(context.Background(), "t")
			if err != nil {
				t.Fatal(err)
			}
			if len(obs) != len(wants) {
				t.Fatalf("observed %d objects, want %d: %+v", len(obs), len(wants), obs)
			}
			for _, o := range obs {
				w, ok := wants[o.Ref.Name]
				if !ok {
					t.Errorf("unexpected object %s", o.Ref.Name)
					continue
				}
				if o.State != w.state {
					t.Errorf("%s: state %s, want %s", o.Ref.Name, o.State, w.state)
				}
				switch {
				case w.code < 0 && o.ExitCode != nil:
					t.Errorf("%s: exit code %d, want none", o.Ref.Name, *o.ExitCode)
				case w.code >= 0 && (o.ExitCode == nil || *o.ExitCode != w.code):
					t.Errorf("%s: exit code %v, want %d", o.Ref.Name, o.ExitCode, w.code)
				}
				inst := strings.TrimPrefix(o.Ref.Name, "t-")
				if o.Owner == nil || o.Owner.Stack != "t" || o.Owner.Instance != inst || o.Owner.SpecHash != "h-"+inst {
					t.Errorf("%s: owner %+v", o.Ref.Name, o.Owner)
				}
				if string(o.Live["memory"]) != `"32M"` {
					t.Errorf("%s: live memory %s, want \"32M\"", o.Ref.Name, o.Live["memory"])
				}
				if o.Ref.Backend != rt || o.Created.IsZero() {
					t.Errorf("%s: ref %+v created %v", o.Ref.Name, o.Ref, o.Created)
				}
			}
			// Without the sidecar, ownership comes from annotations where
			// the listing has them (runc), else the object is foreign.
			os.Remove(filepath.Join(d.bundleDir("t-b"), sidecarFileName))
			obs, _ = d.Observe(context.Background(), "t")
			for _, o := range obs {
				if o.Ref.Name != "t-b" {
					continue
				}
				if rt == "runc" && (o.Owner == nil || o.Owner.Instance != "b") {
					t.Errorf("runc: owner from list annotations = %+v", o.Owner)
				}
				if rt == "crun" && o.Owner != nil {
					t.Errorf("crun: list has no annotations, owner should be nil without berth.json, got %+v", o.Owner)
				}
			}
			if len(rep.Calls) == 0 {
				t.Fatal("replayer saw no calls")
			}
		})
	}
}

// TestReplayErrors classifies the runtimes' recorded error answers.
func TestReplayErrors(t *testing.T) {
	for _, rt := range []string{"crun", "runc"} {
		t.Run(rt, func(t *testing.T) {
			d, _ := replayDriver(t, rt)
			ctx := context.Background()
			cases := []struct {
				name string
				err  error
				want error
			}{
				{"create existing", d.createContainer(ctx, "t-a", d.bundleDir("t-a")), drivers.ErrExists},
				{"state missing", func() error { _, err := d.state(ctx, "nope"); return err }(), drivers.ErrNotFound},
				{"kill missing", d.run(ctx, "nope", "kill", "nope", "TERM"), drivers.ErrNotFound},
				{"start stopped", d.run(ctx, "t-c", "start", "t-c"), drivers.ErrNotRunning},
				{"kill stopped", d.run(ctx, "t-c", "kill", "t-c", "TERM"), drivers.ErrNotRunning},
			}
			for _, c := range cases {
				if !errors.Is(c.err, c.want) {
					t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
				}
				var re *hostcmd.RunError
				if !errors.As(c.err, &re) {
					t.Errorf("%s: the RunError (command and output) is lost: %v", c.name, c.err)
				}
			}
			// Delete of a running container without -f is refused: a plain
			// error, not one of the sentinels.
			err := d.run(ctx, "t-b", "delete", "t-b")
			if err == nil || errors.Is(err, drivers.ErrNotFound) || errors.Is(err, drivers.ErrExists) {
				t.Errorf("delete running without -f: %v", err)
			}
		})
	}
}

// TestToolMissing names the package to install.
func TestToolMissing(t *testing.T) {
	_, err := New(Config{Runtime: "/nonexistent/crun", Root: t.TempDir()}, hostcmd.Local{})
	if !errors.Is(err, drivers.ErrToolMissing) || !strings.Contains(err.Error(), "apt-get install -y crun") {
		t.Fatalf("got %v", err)
	}
	_, err = New(Config{Runtime: "/nonexistent/runc", Root: t.TempDir()}, hostcmd.Local{})
	if !errors.Is(err, drivers.ErrToolMissing) || !strings.Contains(err.Error(), "apt-get install -y runc") {
		t.Fatalf("got %v", err)
	}
	_, err = New(Config{Runtime: "berth-no-such-runtime", Root: t.TempDir()}, hostcmd.Local{})
	if !errors.Is(err, drivers.ErrToolMissing) {
		t.Fatalf("got %v", err)
	}
}

// awaitExitRecord gives the waiter up to a second (tests) to write exit.json
// after the runtime reports the container stopped.
func (d *Driver) awaitExitRecord(ctx context.Context, id string) {
	path := filepath.Join(d.bundleDir(id), exitFileName)
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		if _, err := os.Stat(path); err == nil || ctx.Err() != nil {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}
