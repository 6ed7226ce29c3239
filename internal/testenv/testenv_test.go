package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestUnavailable runs a test that calls Unavailable in a child process,
// with and without CI=true, and checks it skips loudly or fails.
func TestUnavailable(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		Unavailable(t, "widget test", "widget missing (apt-get install widget)")
		t.Fatal("Unavailable returned")
	}
	tests := []struct {
		ci       string
		wantErr  bool
		wantText string
	}{
		{"", false, "SKIPPING widget test: widget missing (apt-get install widget)"},
		{"false", false, "SKIPPING widget test"},
		{"true", true, "CI=true but widget test cannot run: widget missing (apt-get install widget)"},
	}
	for _, tt := range tests {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestUnavailable$", "-test.v")
			cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+tt.ci)
			out, err := cmd.CombinedOutput()
			if (err != nil) != tt.wantErr {
				t.Fatalf("child err = %v, want failure %v\n%s", err, tt.wantErr, out)
			}
			if !strings.Contains(string(out), tt.wantText) {
				t.Fatalf("child output lacks %q:\n%s", tt.wantText, out)
			}
		})
	}
}
