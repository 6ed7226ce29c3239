package planner

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/plans (and regenerate the large-1000 case)")

// Golden cases: testdata/plans/<case>/ holds
//
//	stack.yaml         the stack file (manifest.Load)
//	observed.json      []drivers.ObservedInstance; an owned object without
//	                   owner spec gets the spec of its instance in applied.yaml
//	applied.yaml       optional: the stack file as the last `up` applied it
//	options.json       optional: {"mode": "down"|"stop", "keep_orphans": true}
//	plan.txt.golden    RenderText without colour, or "error: ..." for a
//	                   plan-time error
//	plan.json.golden   WriteJSON (absent for error cases and for plans of
//	                   100 nodes or more, whose JSON is still read back)
//	nodes.txt.golden   Node.String of every node, in plan order
//	graph.dot.golden   WriteDOT (plans under 100 nodes)
//
// Secrets in the stack files all contain "s3cret"; no output may.
// `go test ./planner -update` rewrites the goldens.

const largeDir = "testdata/plans/large-1000"

type caseOptions struct {
	Mode        string `json:"mode"`
	KeepOrphans bool   `json:"keep_orphans"`
}

func loadCaseStack(t *testing.T, path string) *manifest.Stack {
	t.Helper()
	s, err := manifest.Load(path, manifest.LoadOptions{Environ: map[string]string{}})
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	s.File = "stack.yaml" // stable across checkouts
	return s
}

func readCaseInput(t *testing.T, dir string) Input {
	t.Helper()
	in := Input{Stack: loadCaseStack(t, filepath.Join(dir, "stack.yaml")), Capabilities: testCaps}
	data, err := os.ReadFile(filepath.Join(dir, "observed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &in.Observed); err != nil {
		t.Fatalf("observed.json: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "applied.yaml")); err == nil {
		fillOwnerSpecs(loadCaseStack(t, filepath.Join(dir, "applied.yaml")), in.Observed)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "options.json")); err == nil {
		var o caseOptions
		if err := json.Unmarshal(data, &o); err != nil {
			t.Fatalf("options.json: %v", err)
		}
		if o.Mode != "" {
			if in.Mode, err = parseMode(o.Mode); err != nil {
				t.Fatal(err)
			}
		}
		in.KeepOrphans = o.KeepOrphans
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return in
}

// checkGolden compares got with the golden file, or rewrites it with
// -update. want == "" and no file means the output must not exist.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if got == nil {
			os.Remove(path)
			return
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if got == nil {
		if err == nil {
			t.Errorf("%s exists but the case produces no such output", path)
		}
		return
	}
	if err != nil {
		t.Fatalf("%v (run go test ./planner -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test ./planner -update rewrites it):\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func TestGolden(t *testing.T) {
	if *update {
		writeLargeCase(t)
	}
	dirs, err := filepath.Glob("testdata/plans/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			in := readCaseInput(t, dir)
			p, err := Compute(in)
			var txt, js, jsGolden, nodes, dot []byte
			if err != nil {
				txt = []byte("error: " + err.Error() + "\n")
			} else {
				var b bytes.Buffer
				if err := RenderText(&b, p, false); err != nil {
					t.Fatal(err)
				}
				txt = bytes.Clone(b.Bytes())
				b.Reset()
				if err := WriteJSON(&b, p); err != nil {
					t.Fatal(err)
				}
				js = bytes.Clone(b.Bytes())
				nodes = []byte(nodeLines(p))
				// Large plans: the text and node goldens suffice; their
				// JSON (megabytes) is still read back below.
				if len(p.Nodes) < 100 {
					jsGolden = js
					b.Reset()
					if err := WriteDOT(&b, p); err != nil {
						t.Fatal(err)
					}
					dot = bytes.Clone(b.Bytes())
				}
				// Every view of a saved plan matches the fresh one.
				back, err := ReadJSON(bytes.NewReader(js))
				if err != nil {
					t.Fatal(err)
				}
				b.Reset()
				if err := RenderText(&b, back, false); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b.Bytes(), txt) {
					t.Errorf("saved plan renders differently")
				}
				if back.Fingerprint() != p.Fingerprint() {
					t.Errorf("fingerprint lost in the JSON plan")
				}
			}
			for _, out := range [][]byte{txt, js, nodes, dot} {
				if bytes.Contains(out, []byte("s3cret")) {
					t.Errorf("a secret leaked into the output:\n%s", out)
				}
			}
			checkGolden(t, filepath.Join(dir, "plan.txt.golden"), txt)
			checkGolden(t, filepath.Join(dir, "plan.json.golden"), jsGolden)
			checkGolden(t, filepath.Join(dir, "nodes.txt.golden"), nodes)
			checkGolden(t, filepath.Join(dir, "graph.dot.golden"), dot)
		})
	}
}

// largeFiles renders the large-1000 case's input files.
func largeFiles() map[string][]byte {
	desired, applied, observed := largeCase(1000)
	return map[string][]byte{
		"stack.yaml":    []byte(stackYAML(desired)),
		"applied.yaml":  []byte(stackYAML(applied)),
		"observed.json": observedJSON(observed),
	}
}

func writeLargeCase(t *testing.T) {
	if err := os.MkdirAll(largeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range largeFiles() {
		if err := os.WriteFile(filepath.Join(largeDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLargeCaseFilesCurrent fails when the generator and the committed
// large-1000 inputs disagree.
func TestLargeCaseFilesCurrent(t *testing.T) {
	for name, want := range largeFiles() {
		got, err := os.ReadFile(filepath.Join(largeDir, name))
		if err != nil {
			t.Fatalf("%v (run go test ./planner -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s/%s is stale: run go test ./planner -update", largeDir, name)
		}
	}
	// The stack file loads into the instances the generator built.
	desired, _, _ := largeCase(1000)
	loaded := loadCaseStack(t, filepath.Join(largeDir, "stack.yaml"))
	for name, inst := range desired.Instances {
		l := loaded.Instances[name]
		if l == nil {
			t.Fatalf("%s missing from the loaded stack", name)
		}
		_, a := CanonicalSpec(inst)
		_, b := CanonicalSpec(l)
		if a != b {
			s1, _ := CanonicalSpec(inst)
			s2, _ := CanonicalSpec(l)
			t.Fatalf("%s: generated %s, loaded %s", name, s1, s2)
		}
	}
	if len(loaded.Instances) != len(desired.Instances) {
		t.Errorf("loaded %d instances, generated %d", len(loaded.Instances), len(desired.Instances))
	}
}
