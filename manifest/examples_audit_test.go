package manifest

import (
	"strings"
	"testing"
)

// TestExamplesHoldWhatTheyPromise: the Proxmox example has containers and
// cloud-init VMs cloned from a template; the mixed example spans local and
// Proxmox backends.
func TestExamplesHoldWhatTheyPromise(t *testing.T) {
	env := map[string]string{"PVE_TOKEN_SECRET": "example-SECRET-token", "PVE_FINGERPRINT": strings.Repeat("AB:", 31) + "AB"}
	backends := func(file string) (map[string]int, *Stack) {
		t.Helper()
		st, err := Load(file, LoadOptions{Environ: env})
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		n := map[string]int{}
		for _, in := range st.Instances {
			n[in.Backend]++
		}
		return n, st
	}
	n, st := backends("../examples/proxmox.yaml")
	clonedCI := 0
	for _, in := range st.Instances {
		if in.Backend == BackendProxmoxVM && in.Clone != nil && in.Clone.Template != "" && in.CloudInit != nil {
			clonedCI++
		}
	}
	if n[BackendProxmoxLXC] == 0 || clonedCI == 0 {
		t.Errorf("proxmox example: %d CTs, %d cloud-init VMs cloned from a template; want both", n[BackendProxmoxLXC], clonedCI)
	}
	n, _ = backends("../examples/mixed.yaml")
	if n[BackendLXC]+n[BackendCrun]+n[BackendRunc] == 0 || n[BackendProxmoxLXC]+n[BackendProxmoxVM] == 0 {
		t.Errorf("mixed example backends %v: want local and Proxmox instances", n)
	}
}
