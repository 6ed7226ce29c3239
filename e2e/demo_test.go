package e2e

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/internal/testenv"
)

// TestQuickstartDemo runs `make demo`'s script (examples/demo.sh) with the
// built binary: the quickstart's LXC and crun containers come up behind
// the health gate, ps shows the LXC one's IP, a memory change applies in
// place without a restart, and down leaves nothing behind. The script's
// bridge and names are fixed, so concurrent runs on one machine take
// turns through a lock file.
func TestQuickstartDemo(t *testing.T) {
	requireLXC(t)
	if _, err := exec.LookPath("crun"); err != nil {
		testenv.Unavailable(t, "the quickstart demo", "crun missing (apt-get install -y crun)")
	}
	lock, err := os.OpenFile("/tmp/berth-quickstart-demo.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	cmd := exec.Command("../examples/demo.sh", berthBin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo.sh: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{
		"quickstart-cache  running  healthy  10.88.0.10",
		"~ update in-place cache",
		`~ memory: "64M" -> "128M"`,
		"live memory limit: 134217728 bytes",
		"berth down left nothing behind",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
}
