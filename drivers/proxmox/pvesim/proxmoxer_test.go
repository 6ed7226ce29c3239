package pvesim

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testenv"
)

// systemPython is Debian's interpreter, where python3-proxmoxer lives (a
// pyenv python3 on PATH does not have it).
const systemPython = "/usr/bin/python3"

// TestProxmoxerClient runs testdata/proxmoxer_smoke.py, an independent
// client (python3-proxmoxer), against the simulator over HTTPS with the
// simulator's certificate as CA.
func TestProxmoxerClient(t *testing.T) {
	if out, err := exec.Command(systemPython, "-c", "import proxmoxer").CombinedOutput(); err != nil {
		testenv.Unavailable(t, "proxmoxer conformance",
			"python3-proxmoxer missing ("+strings.TrimSpace(string(out))+"): apt-get install python3-proxmoxer (.ci/install-deps)")
	}
	s := newSim(t, Options{})
	ca := filepath.Join(t.TempDir(), "pvesim.pem")
	if err := os.WriteFile(ca, s.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(s.Addr())
	cmd := exec.Command(systemPython, "testdata/proxmoxer_smoke.py", host, port, s.TokenID(), s.TokenSecret(), ca)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "OK" {
		t.Fatalf("proxmoxer smoke: %v\n%s", err, out)
	}
	if n := s.Count("POST", "/nodes/{node}/lxc"); n != 1 {
		t.Fatalf("proxmoxer made %d CT creates, want 1", n)
	}
}
