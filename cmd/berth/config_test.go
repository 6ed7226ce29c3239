package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-dev/berth/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// secretEnv sets the environment the CLI fixtures read (Load uses the
// process environment, as the CLI does). Its secret holds the marker
// SECRET- like the inline ones, and no output may contain the marker.
func secretEnv(t *testing.T) {
	t.Setenv("CLITEST_TOKEN", "env-SECRET-token")
}

func checkNoSecret(t *testing.T, what string, out string) {
	t.Helper()
	if strings.Contains(out, "SECRET-") {
		t.Errorf("%s shows a secret:\n%s", what, out)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	abs, _ := filepath.Abs("testdata")
	got = bytes.ReplaceAll(got, []byte(abs), []byte("$DIR"))
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./cmd/berth -update creates it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s:\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

func TestConfig(t *testing.T) {
	secretEnv(t)
	for _, format := range []string{"yaml", "json"} {
		t.Run(format, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runConfig(context.Background(), configOptions{
				Global: &globalOptions{File: "testdata/stack.yaml"}, Format: format, Out: &out, Err: &errOut,
			})
			if err != nil {
				t.Fatal(err)
			}
			checkNoSecret(t, "config", out.String()+errOut.String())
			if !strings.Contains(out.String(), "********") {
				t.Errorf("secrets are not shown masked:\n%s", out.String())
			}
			golden(t, "config."+format+".golden", out.Bytes())
			if format == "json" && !json.Valid(out.Bytes()) {
				t.Error("config --format json is not JSON")
			}
		})
	}
	err := runConfig(context.Background(), configOptions{Global: &globalOptions{File: "testdata/stack.yaml"}, Format: "toml", Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), `unknown --format "toml"`) {
		t.Errorf("--format toml: err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	secretEnv(t)
	var out, errOut bytes.Buffer
	if err := runValidate(context.Background(), validateOptions{Global: &globalOptions{File: "testdata/stack.yaml"}, Out: &out, Err: &errOut}); err != nil {
		t.Fatal(err)
	}
	want := "testdata/stack.yaml: stack clitest is valid: 3 instances (crun 1, lxc 1, proxmox-vm 1), 1 provider\n"
	if out.String() != want {
		t.Errorf("summary = %q, want %q", out.String(), want)
	}

	// -p overrides the name field.
	out.Reset()
	if err := runValidate(context.Background(), validateOptions{Global: &globalOptions{File: "testdata/stack.yaml", ProjectName: "other"}, Out: &out, Err: &errOut}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "stack other is valid") {
		t.Errorf("-p ignored: %q", out.String())
	}
}

// TestValidateErrors runs the whole binary path (newApp + printError) on a
// broken file: every problem, one per line with positions, then a count;
// never the inline password.
func TestValidateErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	err := newApp(&out, &errOut).Run(context.Background(), []string{"berth", "-f", "testdata/broken.yaml", "validate"})
	if err == nil {
		t.Fatal("validate of a broken file succeeded")
	}
	var printed bytes.Buffer
	printError(&printed, err)
	want := "testdata/broken.yaml:8:3: instances.web: missing required field \"image\" (backend crun runs an image: dir:PATH, oci:PATH[:TAG], tar:PATH or a registry reference)\n" +
		"testdata/broken.yaml:10:13: instances.web.memory: \"64X\": not a size: want a number with an optional unit k, M, G or T, e.g. 256M or 2G\n" +
		"testdata/broken.yaml:11:18: instances.web.depends_on.nope: unknown instance \"nope\" (instances: web)\n" +
		"berth: testdata/broken.yaml: 3 problems\n"
	if printed.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", printed.String(), want)
	}
	checkNoSecret(t, "validate", printed.String()+out.String()+errOut.String())
}

func TestSchemaCommand(t *testing.T) {
	var out bytes.Buffer
	if err := runSchema(context.Background(), schemaOptions{Out: &out}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), schema.JSON()) || !json.Valid(out.Bytes()) {
		t.Error("berth schema does not print the embedded schema")
	}
}

// TestFileDiscovery: -f wins; else berth.yaml, then berth.yml in the
// working directory; the error names what was looked for.
func TestFileDiscovery(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	g := &globalOptions{}
	if _, err := loadStack(g); err == nil || !strings.Contains(err.Error(), "looked for berth.yaml, berth.yml") {
		t.Fatalf("no file: err = %v", err)
	}
	write := func(name, stackName string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("name: "+stackName+"\ninstances: {}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("berth.yml", "from-yml")
	if st, err := loadStack(g); err != nil || st.Name != "from-yml" || st.File != "berth.yml" {
		t.Fatalf("berth.yml: %+v, %v", st, err)
	}
	write("berth.yaml", "from-yaml")
	if st, err := loadStack(g); err != nil || st.Name != "from-yaml" {
		t.Fatalf("berth.yaml first: %+v, %v", st, err)
	}
	write("other.yaml", "from-flag")
	if st, err := loadStack(&globalOptions{File: "other.yaml"}); err != nil || st.Name != "from-flag" {
		t.Fatalf("-f: %+v, %v", st, err)
	}
}

// TestHelp: every command answers --help with usage and examples.
func TestHelp(t *testing.T) {
	for _, cmd := range newApp(io.Discard, io.Discard).Commands {
		var out bytes.Buffer
		if err := newApp(&out, &out).Run(context.Background(), []string{"berth", cmd.Name, "--help"}); err != nil {
			t.Errorf("%s --help: %v", cmd.Name, err)
		}
		if !strings.Contains(out.String(), "Examples:") || !strings.Contains(out.String(), "berth "+cmd.Name) {
			t.Errorf("%s --help has no examples:\n%s", cmd.Name, out.String())
		}
		// The synopsis (first line of the usage) names every flag.
		synopsis, _, _ := strings.Cut(cmd.UsageText, "\n")
		for _, f := range cmd.Flags {
			named := false
			for _, n := range f.Names() {
				dash := "--"
				if len(n) == 1 {
					dash = "-"
				}
				named = named || regexp.MustCompile(`(^|[\[\s])`+regexp.QuoteMeta(dash+n)+`([\]\s=]|$)`).MatchString(synopsis)
			}
			if !named {
				t.Errorf("%s: synopsis %q does not name flag %v", cmd.Name, synopsis, f.Names())
			}
		}
	}
}

// TestStackCommandsRefuseArguments: `berth validate foo.yaml` must not
// silently check berth.yaml instead; it names the -f form.
func TestStackCommandsRefuseArguments(t *testing.T) {
	for _, name := range []string{"validate", "config", "schema"} {
		var out bytes.Buffer
		err := newApp(&out, &out).Run(context.Background(), []string{"berth", name, "other.yaml"})
		if err == nil || !strings.Contains(err.Error(), "takes no arguments") || !strings.Contains(err.Error(), "berth -f other.yaml "+name) {
			t.Errorf("%s other.yaml: got %v", name, err)
		}
	}
}
