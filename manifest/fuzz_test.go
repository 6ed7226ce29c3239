package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader (seeded with every fixture).
// Whatever the input, Load must not panic, must return either a stack or
// FieldErrors, and a document that passes the schema must always decode
// into the typed structs (no "internal error": schema and structs agree).
// Run: make fuzz (go test ./manifest -run '^$' -fuzz FuzzLoad -fuzztime 60s).
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(fixtureDir, "*.yaml"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("x: &a [*a, *a]\ninstances: {}\n"))
	f.Add([]byte("instances:\n  a:\n    backend: crun\n    image: ${I:-dir:./r}\n    cpus: ${C:-1}\n"))
	env := fixtureEnv()
	f.Fuzz(func(t *testing.T, data []byte) {
		errs := &errorList{file: "fuzz.yaml"}
		st, err := load("fuzz.yaml", "/nonexistent/fuzz", data, "", env, map[string]string{"DOTENV_ONLY": "x"}, errs)
		if err == nil {
			if st == nil {
				t.Fatal("nil stack and nil error")
			}
			for name, in := range st.Instances {
				if in == nil || in.Name != name {
					t.Fatalf("instance %q not filled in", name)
				}
			}
			return
		}
		if st != nil {
			t.Fatal("stack and error both returned")
		}
		fes := FieldErrors(err)
		if len(fes) == 0 {
			t.Fatalf("error is not FieldErrors: %v", err)
		}
		if strings.Contains(err.Error(), "internal error") {
			t.Fatalf("schema/struct mismatch:\n%s\n--- input:\n%s", err, data)
		}
	})
}
