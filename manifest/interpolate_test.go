package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInterpolate(t *testing.T) {
	env := map[string]string{"SET": "value", "EMPTY": "", "N": "3"}
	tests := []struct {
		in, want, err string
	}{
		{in: "plain", want: "plain"},
		{in: "$SET", want: "value"},
		{in: "${SET}", want: "value"},
		{in: "a${SET}b$SET.c", want: "avaluebvalue.c"},
		{in: "$UNSET", want: ""},
		{in: "${UNSET}", want: ""},
		{in: "${UNSET:-def}", want: "def"},
		{in: "${EMPTY:-def}", want: "def"},
		{in: "${SET:-def}", want: "value"},
		{in: "${UNSET-def}", want: "def"},
		{in: "${EMPTY-def}", want: ""},
		{in: "${SET:+alt}", want: "alt"},
		{in: "${EMPTY:+alt}", want: ""},
		{in: "${EMPTY+alt}", want: "alt"},
		{in: "${UNSET+alt}", want: ""},
		{in: "${UNSET:-${SET}}", want: "value"},
		{in: "${UNSET:-${ALSO_UNSET:-deep}}", want: "deep"},
		{in: "${UNSET:-a}}", want: "a}"},
		{in: "$$", want: "$"},
		{in: "$$SET", want: "$SET"},
		{in: "$${SET}", want: "${SET}"},
		{in: "cost: 5$$", want: "cost: 5$"},
		{in: "${UNSET:-$$}", want: "$"},
		{in: "${N}x", want: "3x"},
		{in: "${SET:?must be set}", want: "value"},
		{in: "${EMPTY?must be set}", want: ""},
		{in: "${UNSET:?must be set}", err: "required variable UNSET is missing a value: must be set"},
		{in: "${EMPTY:?must be set}", err: "required variable EMPTY is missing a value: must be set"},
		{in: "${UNSET?}", err: "required variable UNSET is not set"},
		{in: "${EMPTY:?}", err: "required variable EMPTY is empty"},
		{in: "${UNSET?need ${SET}}", err: "required variable UNSET is missing a value: need value"},
		{in: "$", err: `invalid interpolation "$": a $ at the end must be written $$`},
		{in: "a $ b", err: `invalid interpolation "a $ b": $ must be followed by a name, { or $ (write $$ for a literal $)`},
		{in: "${SET", err: `invalid interpolation "${SET": missing closing }`},
		{in: "${}", err: `invalid interpolation "${}": want ${NAME}, ${NAME:-default}, ${NAME?error} ...`},
		{in: "${1X}", err: `invalid interpolation "${1X}": want ${NAME}, ${NAME:-default}, ${NAME?error} ...`},
		{in: "${SET:}", err: `invalid interpolation "${SET:}": want ${NAME}, ${NAME:-default}, ${NAME?error} ...`},
		{in: "${SET*x}", err: `invalid interpolation "${SET*x}": unknown operator "*x" after SET (want :-, -, :?, ?, :+ or +)`},
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Interpolate(tt.in, lookup)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("Interpolate(%q) error = %v, want %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Interpolate(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseDotEnv(t *testing.T) {
	data := strings.Join([]string{
		"# comment",
		"",
		"A=1",
		"export B = two words ",
		"C='literal ${A} $'",
		`D="line\nbreak \"q\" ${A}"`,
		"E=${A}-${FROM_PROC}",
		"F=value # trailing comment",
		"G=",
		`H="multi`,
		`line"`,
		"FROM_PROC",
		"NOT_IN_PROC",
	}, "\n")
	errs := &errorList{}
	got := parseDotEnv(".env", []byte(data), mapLookup(map[string]string{"FROM_PROC": "proc"}), errs)
	if !errs.empty() {
		t.Fatalf("errors: %v", errs.err())
	}
	want := map[string]string{
		"A": "1", "B": "two words", "C": "literal ${A} $", "D": "line\nbreak \"q\" 1",
		"E": "1-proc", "F": "value", "G": "", "H": "multi\nline", "FROM_PROC": "proc",
	}
	if len(got) != len(want) {
		t.Errorf("got %d vars %v, want %d", len(got), got, len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestParseDotEnvErrors(t *testing.T) {
	errs := &errorList{file: ".env"}
	parseDotEnv("my.env", []byte("OK=1\n1BAD=x\nR=${\nQ='open\nS=1\n"), mapLookup(nil), errs)
	want := "my.env:2:1: invalid variable name \"1BAD\": want letters, digits and _, not starting with a digit\n" +
		"my.env:3:1: R: invalid interpolation \"${\": missing closing }\n" +
		"my.env:4:1: Q: unterminated single-quoted value"
	if err := errs.err(); err == nil || err.Error() != want {
		t.Fatalf("errors:\n%v\nwant:\n%s", err, want)
	}
}

func writeFile(t *testing.T, path, data string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLoadEnvSources checks where variables come from: the environment wins
// over .env next to the file, and --env-file replaces that .env.
func TestLoadEnvSources(t *testing.T) {
	dir := t.TempDir()
	stack := writeFile(t, filepath.Join(dir, "berth.yaml"), "instances:\n  web:\n    backend: lxc\n    labels:\n      a: ${A}\n      b: ${B:-unset}\n")
	writeFile(t, filepath.Join(dir, ".env"), "A=from-dotenv\nB=dotenv-b\n")
	other := writeFile(t, filepath.Join(dir, "other.env"), "B=other-b\n")

	tests := []struct {
		name    string
		opts    LoadOptions
		a, b    string
		wantErr string
	}{
		{"dotenv", LoadOptions{Environ: map[string]string{}}, "from-dotenv", "dotenv-b", ""},
		{"environment wins", LoadOptions{Environ: map[string]string{"A": "from-env"}}, "from-env", "dotenv-b", ""},
		{"env file replaces .env", LoadOptions{Environ: map[string]string{}, EnvFile: other}, "", "other-b", ""},
		{"missing env file", LoadOptions{Environ: map[string]string{}, EnvFile: filepath.Join(dir, "nope.env")}, "", "", "read env file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := Load(stack, tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l := st.Instances["web"].Labels
			if l["a"] != tt.a || l["b"] != tt.b {
				t.Errorf("labels = %v, want a=%q b=%q", l, tt.a, tt.b)
			}
		})
	}
}

// TestStackName checks Compose's precedence: -p, then BERTH_PROJECT_NAME,
// then name:, then the directory name made valid.
func TestStackName(t *testing.T) {
	root := t.TempDir()
	withName := writeFile(t, filepath.Join(root, "My_Project.v2", "berth.yaml"), "name: from-field\ninstances: {}\n")
	noName := writeFile(t, filepath.Join(root, "My_Project.v2", "noname.yaml"), "instances: {}\n")
	tests := []struct {
		name, file, flag string
		env              map[string]string
		want, wantErr    string
	}{
		{"flag wins", withName, "from-flag", map[string]string{"BERTH_PROJECT_NAME": "from-env"}, "from-flag", ""},
		{"env over field", withName, "", map[string]string{"BERTH_PROJECT_NAME": "from-env"}, "from-env", ""},
		{"field over dir", withName, "", map[string]string{}, "from-field", ""},
		{"dir made valid", noName, "", map[string]string{}, "my-project-v2", ""},
		{"bad flag", noName, "Bad_Flag", map[string]string{}, "", `noname.yaml: name: invalid project name "Bad_Flag" from -p/--project-name`},
		{"bad env", noName, "", map[string]string{"BERTH_PROJECT_NAME": "-x"}, "", `invalid project name "-x" from BERTH_PROJECT_NAME`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := Load(tt.file, LoadOptions{ProjectName: tt.flag, Environ: tt.env})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Name != tt.want {
				t.Errorf("name = %q, want %q", st.Name, tt.want)
			}
		})
	}
}

func TestFindFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := FindFile(dir); err == nil || !strings.Contains(err.Error(), "berth.yaml, berth.yml") {
		t.Fatalf("empty dir: err = %v", err)
	}
	yml := writeFile(t, filepath.Join(dir, "berth.yml"), "instances: {}\n")
	if got, err := FindFile(dir); err != nil || got != yml {
		t.Fatalf("FindFile = %q, %v; want %q", got, err, yml)
	}
	yaml := writeFile(t, filepath.Join(dir, "berth.yaml"), "instances: {}\n")
	if got, err := FindFile(dir); err != nil || got != yaml {
		t.Fatalf("FindFile = %q, %v; want %q (berth.yaml first)", got, err, yaml)
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "sleep 60", want: []string{"sleep", "60"}},
		{in: "  a   b\tc  ", want: []string{"a", "b", "c"}},
		{in: `sh -c 'echo "hi there"; exit 1'`, want: []string{"sh", "-c", `echo "hi there"; exit 1`}},
		{in: `echo "a \"b\" \$c \x"`, want: []string{"echo", `a "b" $c \x`}},
		{in: `a\ b c`, want: []string{"a b", "c"}},
		{in: `''`, want: []string{""}},
		{in: `x'y'"z"`, want: []string{"xyz"}},
		{in: "", want: nil},
		{in: "'open", err: true},
		{in: `"open`, err: true},
	}
	for _, tt := range tests {
		got, err := SplitCommand(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("SplitCommand(%q) err = %v", tt.in, err)
			continue
		}
		if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") || len(got) != len(tt.want) {
			t.Errorf("SplitCommand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseImageRef(t *testing.T) {
	tests := []struct {
		in   string
		want ImageRef
		err  bool
	}{
		{in: "dir:./rootfs", want: ImageRef{Kind: ImageDir, Path: "./rootfs"}},
		{in: "tar:/srv/rootfs.tar.gz", want: ImageRef{Kind: ImageTar, Path: "/srv/rootfs.tar.gz"}},
		{in: "oci:./images/busybox:1.36", want: ImageRef{Kind: ImageOCI, Path: "./images/busybox", Tag: "1.36"}},
		{in: "oci:./images/busybox", want: ImageRef{Kind: ImageOCI, Path: "./images/busybox"}},
		{in: "oci:/a:b/c", want: ImageRef{Kind: ImageOCI, Path: "/a:b/c"}},
		{in: "docker.io/library/busybox:1.36", want: ImageRef{Kind: ImageRegistry, Ref: "docker.io/library/busybox:1.36"}},
		{in: "localhost:5000/app@sha256:abc", want: ImageRef{Kind: ImageRegistry, Ref: "localhost:5000/app@sha256:abc"}},
		{in: "dir:", err: true},
		{in: "oci::tag", err: true},
		{in: "two words", err: true},
	}
	for _, tt := range tests {
		got, err := ParseImageRef(tt.in)
		if (err != nil) != tt.err || (!tt.err && got != tt.want) {
			t.Errorf("ParseImageRef(%q) = %+v, %v; want %+v (err %v)", tt.in, got, err, tt.want, tt.err)
		}
		if !tt.err && got.String() != tt.in {
			t.Errorf("ParseImageRef(%q).String() = %q", tt.in, got.String())
		}
	}
}

// TestDotEnvErrorsInLoad: a broken .env next to the stack file is reported
// with its own name and line, together with the stack file's problems.
func TestDotEnvErrorsInLoad(t *testing.T) {
	dir := t.TempDir()
	stack := writeFile(t, filepath.Join(dir, "berth.yaml"), "instances:\n  web:\n    backend: lxc\n    memory: ${MEM}\n    cpus: 0\n")
	writeFile(t, filepath.Join(dir, ".env"), "MEM=64M\n9X=1\n")
	_, err := Load(stack, LoadOptions{Environ: map[string]string{}})
	want := filepath.Join(dir, ".env") + ":2:1: invalid variable name \"9X\": want letters, digits and _, not starting with a digit\n" +
		stack + ":5:11: instances.web.cpus: must be greater than 0"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}
