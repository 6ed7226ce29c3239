package waiter

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestArgsRoundTrip(t *testing.T) {
	o := Options{Log: "/b/log", ExitFile: "/b/exit.json", PidFile: "/b/pid", DetachUnified: true, Argv: []string{"crun", "--root", "/s", "create", "x"}}
	got, err := parseArgs(Args(o))
	if err != nil || !reflect.DeepEqual(got, o) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range [][]string{{"oci-waiter"}, {"--log"}, {"--bogus"}, {"--log", "l", "--exit-file", "e", "--pid-file", "p", "--"}} {
		if _, err := parseArgs(bad); err == nil {
			t.Errorf("parseArgs(%q) accepted", bad)
		}
	}
}

// launch runs this test binary as the waiter the way the driver does:
// through the launch script, reading the result line from stdout.
func launch(t *testing.T, o Options) Result {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", append([]string{"-c", LaunchScript, exe}, Args(o)...)...)
	cmd.Env = append(os.Environ(), Env+"=wait")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	var res Result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("result %q: %v", out, err)
	}
	return res
}

// A failing "runtime" relays its exit code and output, and leaves nothing
// of it in the container log.
func TestWaiterRelaysFailure(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "console.log")
	os.WriteFile(log, []byte("earlier output\n"), 0o600)
	res := launch(t, Options{Log: log, ExitFile: filepath.Join(dir, "exit.json"), PidFile: filepath.Join(dir, "pid"),
		Argv: []string{"sh", "-c", "echo 'container `x` already exists' >&2; exit 3"}})
	if res.ExitCode != 3 || !strings.Contains(res.Output, "already exists") {
		t.Fatalf("result %+v", res)
	}
	if b, _ := os.ReadFile(log); string(b) != "earlier output\n" {
		t.Errorf("log after a failed create: %q", b)
	}
}

// On success the waiter returns at once, adopts the orphaned "container"
// (the process named in the pid file) as subreaper and records its exit
// code, here 5, with its output in the log.
func TestWaiterRecordsExit(t *testing.T) {
	dir := t.TempDir()
	pid := filepath.Join(dir, "pid")
	exitFile := filepath.Join(dir, "exit.json")
	log := filepath.Join(dir, "console.log")
	res := launch(t, Options{Log: log, ExitFile: exitFile, PidFile: pid,
		Argv: []string{"sh", "-c", `sh -c 'sleep 0.3; echo from-container; exit 5' & echo $! > ` + pid}})
	if res.ExitCode != 0 {
		t.Fatalf("result %+v", res)
	}
	// The "container" sleeps 0.3 s: its waiter holds the lock meanwhile
	// (unless this machine is slow enough that it is already done).
	if !Alive(dir) && ReadExitRecord(exitFile) == nil {
		t.Error("Alive false while the waiter waits and no exit record yet")
	}
	var rec *ExitRecord
	for i := 0; i < 200 && rec == nil; i++ {
		rec = ReadExitRecord(exitFile)
		time.Sleep(50 * time.Millisecond)
	}
	if rec == nil || rec.ExitCode != 5 || rec.Unknown {
		t.Fatalf("exit record %+v", rec)
	}
	// The waiter's lock on the directory goes with it.
	gone := false
	for i := 0; i < 200 && !gone; i++ {
		gone = !Alive(dir)
		time.Sleep(20 * time.Millisecond)
	}
	if !gone {
		t.Error("Alive still true after the waiter wrote the exit record")
	}
	if b, _ := os.ReadFile(log); !strings.Contains(string(b), "from-container") {
		t.Errorf("log %q", b)
	}
}
