package lxc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/drivers/hostcmd"
	"github.com/berth-dev/berth/manifest"
)

// Regenerate testdata/recordings.json and testdata/configs/ from real LXC
// (root, lxc installed, no network needed):
//
//	go test ./drivers/lxc -run TestRecordFixtures -record
var record = flag.Bool("record", false, "re-record testdata/ from the real lxc-* tools")

// recordLXCPath is the lxcpath recordings are made in; it is replaced by
// lxcPathToken in the files and by each test's own directory on replay.
const (
	recordLXCPath = "/tmp/berth-lxc-fixtures"
	lxcPathToken  = "@LXCPATH@"
	recordBridge  = "berthrec0"
)

// recorder is a Cmder that runs commands for real and keeps what they
// printed, for replay by hostcmd.Replayer.
type recorder struct {
	mu   sync.Mutex
	recs []hostcmd.Recording
}

func (r *recorder) Command(ctx context.Context, name string, args ...string) hostcmd.Cmd {
	return &recordCmd{r: r, argv: append([]string{name}, args...), ctx: ctx}
}

type recordCmd struct {
	r              *recorder
	ctx            context.Context
	argv           []string
	stdout, stderr io.Writer
	stdin          io.Reader
}

func (c *recordCmd) SetEnv(...string) hostcmd.Cmd                    { return c }
func (c *recordCmd) SetStdin(r io.Reader) hostcmd.Cmd                { c.stdin = r; return c }
func (c *recordCmd) SetStdout(w io.Writer) hostcmd.Cmd               { c.stdout = w; return c }
func (c *recordCmd) SetStderr(w io.Writer) hostcmd.Cmd               { c.stderr = w; return c }
func (c *recordCmd) SetSysProcAttr(*syscall.SysProcAttr) hostcmd.Cmd { return c }

func (c *recordCmd) exec() ([]byte, []byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(c.ctx, c.argv[0], c.argv[1:]...)
	cmd.Stdin = c.stdin
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	rec := hostcmd.Recording{Argv: c.argv, Stdout: stdout.String(), Stderr: stderr.String()}
	var x *exec.ExitError
	if errors.As(err, &x) {
		rec.ExitCode = x.ExitCode()
	}
	c.r.mu.Lock()
	c.r.recs = append(c.r.recs, rec)
	c.r.mu.Unlock()
	if c.stdout != nil {
		c.stdout.Write(stdout.Bytes())
	}
	if c.stderr != nil {
		c.stderr.Write(stderr.Bytes())
	}
	if err != nil {
		return stdout.Bytes(), stderr.Bytes(), &hostcmd.RunError{Argv: c.argv, Output: append(stdout.Bytes(), stderr.Bytes()...), Err: err}
	}
	return stdout.Bytes(), stderr.Bytes(), nil
}

func (c *recordCmd) Run() error { _, _, err := c.exec(); return err }
func (c *recordCmd) Output() ([]byte, error) {
	out, stderr, err := c.exec()
	if err != nil {
		return out, &hostcmd.RunError{Argv: c.argv, Output: stderr, Err: err}
	}
	return out, nil
}

// TestRecordFixtures builds a small zoo of containers in recordLXCPath
// (berth-made running with two static IPs, berth-made never started,
// another stack's, a foreign running one) and records the tool output the
// replay tests use.
func TestRecordFixtures(t *testing.T) {
	if !*record {
		t.Skip("re-record with -record")
	}
	requireLXC(t)
	ctx := context.Background()
	destroyAll(t, recordLXCPath)
	os.RemoveAll(recordLXCPath)
	t.Cleanup(func() {
		destroyAll(t, recordLXCPath)
		exec.Command("ip", "link", "del", recordBridge).Run()
	})
	rec := &recorder{}
	d, err := New(Config{LXCPath: recordLXCPath, Bridge: recordBridge, CreateBridge: true, Cgroup: CgroupV1}, rec)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(stack, name string, inst *manifest.Instance, start bool) {
		t.Helper()
		ref, err := d.Create(ctx, target(stack, name, inst))
		if err != nil {
			t.Fatal(err)
		}
		if start {
			if err := d.Start(ctx, ref); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("st", "st-web", &manifest.Instance{Name: "web", Backend: "lxc", Memory: 256 * manifest.MiB, Swap: 128 * manifest.MiB, CPUs: 0.5,
		Networks: []manifest.Network{
			{Type: "veth", IP: "10.99.0.10/24", Gateway: "10.99.0.1"},
			{Type: "veth", IP: "10.99.0.11/24"},
		}}, true)
	mk("st", "st-db", &manifest.Instance{Name: "db", Backend: "lxc", Memory: manifest.GiB,
		Networks: []manifest.Network{{Type: "none"}}}, false)
	mk("other", "other-app", &manifest.Instance{Name: "app", Backend: "lxc", CPUs: 2,
		Networks: []manifest.Network{{Type: "none"}}}, false)
	base := filepath.Join(t.TempDir(), "base.conf")
	os.WriteFile(base, []byte("lxc.net.0.type = empty\n"), 0o644)
	run := func(args ...string) { rec.Command(ctx, args[0], args[1:]...).Output() }
	run("lxc-create", "-P", recordLXCPath, "-n", "hand-made", "-t", "busybox", "-f", base)
	run("lxc-start", "-P", recordLXCPath, "-n", "hand-made", "-d")
	rec.recs = nil // keep only what the replay tests need

	if _, err := d.Observe(ctx, "st"); err != nil {
		t.Fatal(err)
	}
	run("lxc-info", "-P", recordLXCPath, "-n", "st-web", "-sH")
	run("lxc-info", "-P", recordLXCPath, "-n", "st-db", "-sH")
	run("lxc-info", "-P", recordLXCPath, "-n", "missing", "-sH")
	run("lxc-create", "-P", recordLXCPath, "-n", "hand-made", "-t", "busybox", "-f", base)
	run("lxc-create", "-P", recordLXCPath, "-n", "x1", "-t", "nosuch", "-f", base)
	run("lxc-stop", "-P", recordLXCPath, "-n", "st-db", "-t", "10")
	run("lxc-stop", "-P", recordLXCPath, "-n", "missing", "-t", "10")
	run("lxc-destroy", "-P", recordLXCPath, "-n", "missing", "-f")
	run("lxc-attach", "-P", recordLXCPath, "-n", "st-db", "--clear-env", "--", "true")
	run("lxc-start", "-P", recordLXCPath, "-n", "missing", "-d", "-o", recordLXCPath+"/missing/lxc.log", "-l", "INFO")
	run("lxc-cgroup", "-P", recordLXCPath, "-n", "st-web", "memory.limit_in_bytes")

	data, err := json.MarshalIndent(rec.recs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.ReplaceAll(data, []byte(recordLXCPath), []byte(lxcPathToken))
	os.MkdirAll("testdata/configs", 0o755)
	if err := os.WriteFile("testdata/recordings.json", append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"st-web", "st-db", "other-app", "hand-made"} {
		for _, f := range []string{"config", sidecarName} {
			b, err := os.ReadFile(filepath.Join(recordLXCPath, n, f))
			if err != nil {
				continue
			}
			b = bytes.ReplaceAll(b, []byte(recordLXCPath), []byte(lxcPathToken))
			os.WriteFile(filepath.Join("testdata/configs", n+"."+strings.TrimSuffix(f, ".json")), b, 0o644)
		}
	}
}

// loadFixtures builds a fake lxcpath in a temp dir from testdata/configs
// and returns it with a Replayer answering from testdata/recordings.json.
func loadFixtures(t *testing.T) (string, *hostcmd.Replayer) {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/recordings.json")
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.ReplaceAll(data, []byte(lxcPathToken), []byte(dir))
	var recs []hostcmd.Recording
	if err := json.Unmarshal(data, &recs); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/configs/*")
	for _, f := range files {
		base := filepath.Base(f)
		name, kind, _ := strings.Cut(base, ".")
		dst := filepath.Join(dir, name, "config")
		if kind == "berth" {
			dst = filepath.Join(dir, name, sidecarName)
		}
		b, _ := os.ReadFile(f)
		os.MkdirAll(filepath.Dir(dst), 0o755)
		os.WriteFile(dst, bytes.ReplaceAll(b, []byte(lxcPathToken), []byte(dir)), 0o644)
	}
	// st-web and hand-made have been started (they have a start log).
	for _, n := range []string{"st-web", "hand-made"} {
		os.WriteFile(filepath.Join(dir, n, "lxc.log"), nil, 0o644)
	}
	return dir, hostcmd.NewReplayer(recs...)
}
