package manifest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/manifests")

const fixtureDir = "../testdata/manifests"

// fixtureEnv is the environment every fixture is loaded with; it is fixed
// so the tests do not depend on the machine.
func fixtureEnv() map[string]string {
	return map[string]string{
		"HOME":             "/home/tester",
		"PVE_TOKEN_SECRET": "tok-SECRET-from-env",
		"CPUS":             "1.5",
		"UID":              "1000",
		"FROM_ENV":         "from-environment",
		"EMPTY_VAR":        "",
		"FROM_HOST":        "host-value",
	}
}

// secretMarker is in every secret value of the fixtures; it must never
// show up in any output.
const secretMarker = "SECRET-"

// TestManifests loads every testdata/manifests/{valid,invalid}-*.yaml: a
// valid one must load and render as its .golden.json; an invalid one must
// fail with exactly the text of its .err file.
func TestManifests(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtureDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	var invalid int
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".yaml")
		valid := strings.HasPrefix(base, "valid-")
		if !valid && !strings.HasPrefix(base, "invalid-") {
			t.Errorf("%s: fixture names start with valid- or invalid-", f)
			continue
		}
		if !valid {
			invalid++
		}
		t.Run(base, func(t *testing.T) {
			st, err := Load(f, LoadOptions{Environ: fixtureEnv()})
			var got []byte
			golden := filepath.Join(fixtureDir, base+".err")
			if valid {
				if err != nil {
					t.Fatalf("Load: unexpected error:\n%v", err)
				}
				got = renderStack(t, st)
				golden = filepath.Join(fixtureDir, base+".golden.json")
			} else {
				if err != nil && len(FieldErrors(err)) == 0 {
					t.Fatalf("Load error is not a FieldError: %v", err)
				}
				if err == nil {
					t.Fatalf("Load succeeded; want an error")
				}
				got = []byte(strings.ReplaceAll(err.Error(), fixtureDir+"/", "") + "\n")
			}
			if bytes.Contains(got, []byte(secretMarker)) {
				t.Errorf("output shows a secret:\n%s", got)
			}
			compareGolden(t, golden, got)
		})
	}
	if invalid < 40 {
		t.Errorf("%d invalid fixtures; want at least 40", invalid)
	}
}

// renderStack is the golden form of a loaded stack: its JSON (secrets
// masked by Secret itself) plus names and warnings, with the fixture
// directory replaced by $DIR so the file does not depend on the checkout.
func renderStack(t *testing.T, st *Stack) []byte {
	t.Helper()
	out := struct {
		Stack    *Stack              `json:"stack"`
		Names    map[string][]string `json:"names"`
		Warnings []string            `json:"warnings,omitempty"`
	}{Stack: st, Names: map[string][]string{}, Warnings: st.Warnings}
	for k, in := range st.Instances {
		out.Names["instance "+k] = []string{in.Name, in.Provider}
	}
	for k, p := range st.Providers {
		out.Names["provider "+k] = []string{p.Name}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(fixtureDir)
	return append(bytes.ReplaceAll(b, []byte(abs), []byte("$DIR")), '\n')
}

func compareGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run go test ./manifest -update to create it): %v", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("output differs from %s (go test ./manifest -update rewrites it)\n--- got:\n%s\n--- want:\n%s", golden, got, want)
	}
}
