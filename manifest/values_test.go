package manifest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		str  string
	}{
		{"256M", 256 * MiB, "256M"}, {"256m", 256 * MiB, "256M"}, {"2G", 2 * GiB, "2G"},
		{"1.5G", 1536 * MiB, "1536M"}, {"512MiB", 512 * MiB, "512M"}, {"64mb", 64 * MiB, "64M"},
		{"1024", 1024, "1K"}, {"1000", 1000, "1000"}, {"1T", TiB, "1T"}, {"4k", 4 * KiB, "4K"},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if err != nil || got != tt.want || got.String() != tt.str {
			t.Errorf("ParseByteSize(%q) = %v (%s), %v; want %v (%s)", tt.in, int64(got), got, err, int64(tt.want), tt.str)
		}
	}
	for _, bad := range []string{"", "lots", "-1G", "1X", "G"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) succeeded", bad)
		}
	}
	if (300*MiB).MiB() != 300 || ByteSize(1).MiB() != 1 {
		t.Error("MiB() must round up")
	}
}

// TestSecretNeverRenders checks every way a Secret can be printed.
func TestSecretNeverRenders(t *testing.T) {
	s := Secret("hunter2-SECRET-")
	p := Provider{Type: "proxmox", TokenSecret: s, Password: s}
	j, _ := json.Marshal(p)
	y, _ := yaml.Marshal(p)
	outs := []string{
		string(j), string(y), fmt.Sprint(s), fmt.Sprintf("%v %s %+v %#v %q", s, s, p, p, s), s.String(), s.GoString(),
	}
	for _, o := range outs {
		if strings.Contains(o, "hunter2") {
			t.Errorf("secret rendered: %s", o)
		}
	}
	if !strings.Contains(string(j), Mask) || s.Reveal() != "hunter2-SECRET-" || Secret("").String() != "" {
		t.Error("mask or Reveal wrong")
	}
}

// TestConfigRoundTrip: what `berth config` prints (YAML and JSON) reads
// back into the same stack, secrets aside (they come back masked).
func TestConfigRoundTrip(t *testing.T) {
	st, err := Load(fixtureDir+"/valid-proxmox.yaml", LoadOptions{Environ: fixtureEnv()})
	if err != nil {
		t.Fatal(err)
	}
	mask := func(s *Stack) {
		for _, p := range s.Providers {
			p.Name = ""
			if p.TokenSecret != "" {
				p.TokenSecret = Mask
			}
			if p.Password != "" {
				p.Password = Mask
			}
		}
		for _, in := range s.Instances {
			in.Name = ""
			if in.CloudInit != nil && in.CloudInit.Password != "" {
				in.CloudInit.Password = Mask
			}
		}
		s.File, s.Dir, s.Warnings = "", "", nil
	}
	y, err := yaml.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var fromYAML, fromJSON Stack
	if err := yaml.Unmarshal(y, &fromYAML); err != nil {
		t.Fatalf("yaml: %v\n%s", err, y)
	}
	if err := json.Unmarshal(j, &fromJSON); err != nil {
		t.Fatalf("json: %v", err)
	}
	mask(st)
	for name, got := range map[string]*Stack{"yaml": &fromYAML, "json": &fromJSON} {
		if !reflect.DeepEqual(got, st) {
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(st)
			t.Errorf("%s round trip differs:\n%s\n%s", name, a, b)
		}
	}
	var d Duration
	if err := yaml.Unmarshal([]byte(`1m30s`), &d); err != nil || d.D() != 90*time.Second {
		t.Errorf("Duration yaml: %v %v", d, err)
	}
	var v VMID
	if err := yaml.Unmarshal([]byte(`auto`), &v); err != nil || v != 0 {
		t.Errorf("VMID auto: %v %v", v, err)
	}
	if err := yaml.Unmarshal([]byte(`nope`), &v); err == nil {
		t.Error("VMID nope accepted")
	}
}

// TestConfigIsAStackFile: the normal form `berth config` prints is itself a
// valid stack file that loads to the same stack (a fixed point), so every
// default and long form the loader produces is accepted input.
func TestConfigIsAStackFile(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(fixtureDir, "valid-*.yaml"))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			st, err := Load(f, LoadOptions{Environ: fixtureEnv()})
			if err != nil {
				t.Fatal(err)
			}
			out, err := yaml.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(out), "$") {
				t.Skip("resolved values hold a literal $, which a reload would interpolate")
			}
			again := filepath.Join(t.TempDir(), "berth.yaml")
			if err := os.WriteFile(again, out, 0o644); err != nil {
				t.Fatal(err)
			}
			st2, err := Load(again, LoadOptions{Environ: map[string]string{}})
			if err != nil {
				t.Fatalf("config output does not load:\n%v\n---\n%s", err, out)
			}
			a, _ := json.Marshal(st)
			b, _ := json.Marshal(st2)
			if string(a) != string(b) {
				t.Errorf("reload differs:\n%s\n%s", a, b)
			}
		})
	}
}
