package hostcmd

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"lxc-ls", "-P", "/var/lib/lxc", "-F", "NAME,STATE"}, "lxc-ls -P /var/lib/lxc -F NAME,STATE"},
		{[]string{"sh", "-c", "echo hi"}, "sh -c 'echo hi'"},
		{[]string{"echo", ""}, "echo ''"},
		{[]string{"echo", "it's"}, `echo 'it'\''s'`},
	} {
		if got := Quote(tc.argv); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.argv, got, tc.want)
		}
	}
}

func TestLocalRunErrorCarriesOutputAndExitCode(t *testing.T) {
	err := Local{}.Command(context.Background(), "sh", "-c", "echo boom >&2; exit 3").Run()
	var re *RunError
	if !errors.As(err, &re) {
		t.Fatalf("want *RunError, got %T %v", err, err)
	}
	if re.ExitCode() != 3 || ExitCode(err) != 3 {
		t.Errorf("exit code %d, want 3", re.ExitCode())
	}
	if msg := err.Error(); !strings.Contains(msg, "sh -c 'echo boom >&2; exit 3'") || !strings.Contains(msg, "boom") {
		t.Errorf("error does not show the command and its output: %q", msg)
	}
}

func TestLocalOutputSeparatesStreams(t *testing.T) {
	out, err := Local{}.Command(context.Background(), "sh", "-c", "echo out; echo err >&2").Output()
	if err != nil || string(out) != "out\n" {
		t.Fatalf("Output() = %q, %v", out, err)
	}
	if ExitCode(errors.New("plain")) != -1 {
		t.Error("ExitCode of a non-RunError must be -1")
	}
}

func TestReplayer(t *testing.T) {
	r := NewReplayer(
		Recording{Argv: []string{"crun", "state", "web"}, Stdout: `{"status":"running"}`},
		Recording{Argv: []string{"crun", "state", "gone"}, Stderr: "container does not exist", ExitCode: 1},
	)
	ctx := context.Background()
	out, err := r.Command(ctx, "crun", "state", "web").Output()
	if err != nil || string(out) != `{"status":"running"}` {
		t.Fatalf("replayed Output = %q, %v", out, err)
	}
	var buf bytes.Buffer
	err = r.Command(ctx, "crun", "state", "gone").SetStderr(&buf).Run()
	if ExitCode(err) != 1 || buf.String() != "container does not exist" {
		t.Fatalf("replayed failure: exit %d, stderr %q", ExitCode(err), buf.String())
	}
	if err := r.Command(ctx, "crun", "delete", "web").Run(); err == nil || !strings.Contains(err.Error(), "no recording") {
		t.Fatalf("unrecorded command must fail, got %v", err)
	}
	if len(r.Calls) != 3 || Quote(r.Calls[2]) != "crun delete web" {
		t.Fatalf("calls not recorded: %q", r.Calls)
	}
}
