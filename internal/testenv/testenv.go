// Package testenv holds what tests across berth share about the host they
// run on. Tests that need a host tool (lxc-*, crun, runc, python3-proxmoxer)
// or root skip loudly where it is missing, so a developer sees what did not
// run, and fail under CI=true, where .ci/install-deps must have installed
// everything.
package testenv

import (
	"os"
	"testing"
)

// CI reports whether the tests run under CI (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// Unavailable stops a test that cannot run on this host: it fails under
// CI=true and otherwise skips with a reason that starts with SKIPPING.
// what names the test ("proxmoxer conformance"), why the missing piece
// and how to install it.
func Unavailable(t testing.TB, what, why string) {
	t.Helper()
	if CI() {
		t.Fatalf("CI=true but %s cannot run: %s", what, why)
	}
	t.Skipf("SKIPPING %s: %s", what, why)
}
