package oci

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/drivers"
	"github.com/berth-dev/berth/manifest"
)

// TestProcessArgs: Compose semantics of entrypoint/command over the image.
func TestProcessArgs(t *testing.T) {
	img := ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"serve", "-v"}}
	cases := []struct {
		name       string
		entry, cmd []string
		img        ImageConfig
		want       []string
		err        bool
	}{
		{"image defaults", nil, nil, img, []string{"/entry", "serve", "-v"}, false},
		{"command replaces Cmd", nil, []string{"run"}, img, []string{"/entry", "run"}, false},
		{"entrypoint drops Cmd", []string{"/other"}, nil, img, []string{"/other"}, false},
		{"both", []string{"/other"}, []string{"x"}, img, []string{"/other", "x"}, false},
		{"no image config", nil, []string{"sleep", "1"}, ImageConfig{}, []string{"sleep", "1"}, false},
		{"nothing", nil, nil, ImageConfig{}, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := processArgs(&manifest.Instance{Entrypoint: c.entry, Command: c.cmd}, c.img)
			if (err != nil) != c.err || !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %q, %v; want %q (error %v)", got, err, c.want, c.err)
			}
		})
	}
}

// TestBuildSpec checks the generated config.json fields per runtime.
func TestBuildSpec(t *testing.T) {
	rootfs := t.TempDir()
	os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc/group"), []byte("root:x:0:\nstaff:x:50:\n"), 0o644)
	img := &Image{Rootfs: rootfs, Config: ImageConfig{Cmd: []string{"serve"}, Env: []string{"PATH=/bin", "MODE=image", "KEEP=1"}, WorkingDir: "/srv", User: "app"}}
	inst := &manifest.Instance{
		Name: "web", Hostname: "web1", Memory: 128 * manifest.MiB, Swap: 64 * manifest.MiB, CPUs: 1.5, ReadOnly: true,
		Environment: map[string]string{"MODE": "instance", "EXTRA": "x"},
		Labels:      map[string]string{"team": "a"},
		Mounts: []manifest.Mount{
			{Type: "bind", Source: "data", Target: "/data", ReadOnly: true},
			{Type: "tmpfs", Target: "/run"},
		},
	}
	tg := drivers.Target{Stack: "s", Instance: inst, StackDir: "/stack", ObjectName: "s-web",
		Owner: drivers.Ownership{Stack: "s", Instance: "web", SpecHash: "abc", Spec: json.RawMessage(`{"image":"x"}`)}}
	for _, c := range []struct{ flavor, version string }{{"crun", "1.0.2"}, {"runc", rspec.Version}} {
		t.Run(c.flavor, func(t *testing.T) {
			spec, err := buildSpec(tg, img, "/b/rootfs", c.flavor)
			if err != nil {
				t.Fatal(err)
			}
			if spec.Version != c.version {
				t.Errorf("ociVersion %s, want %s", spec.Version, c.version)
			}
			p := spec.Process
			if p.Terminal || !reflect.DeepEqual(p.Args, []string{"serve"}) || p.Cwd != "/srv" || p.User.UID != 1000 || p.User.GID != 1001 {
				t.Errorf("process: %+v", p)
			}
			wantEnv := []string{"PATH=/bin", "MODE=instance", "KEEP=1", "EXTRA=x"}
			if !reflect.DeepEqual(p.Env, wantEnv) {
				t.Errorf("env %q, want %q", p.Env, wantEnv)
			}
			if spec.Hostname != "web1" || !spec.Root.Readonly || spec.Root.Path != "/b/rootfs" {
				t.Errorf("hostname %q root %+v", spec.Hostname, spec.Root)
			}
			r := spec.Linux.Resources
			if *r.Memory.Limit != 128<<20 || *r.Memory.Swap != 192<<20 || *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 {
				t.Errorf("resources: mem %d swap %d quota %d period %d", *r.Memory.Limit, *r.Memory.Swap, *r.CPU.Quota, *r.CPU.Period)
			}
			var bind, tmpfs *rspec.Mount
			for i := range spec.Mounts {
				switch spec.Mounts[i].Destination {
				case "/data":
					bind = &spec.Mounts[i]
				case "/run":
					tmpfs = &spec.Mounts[i]
				}
			}
			if bind == nil || bind.Source != "/stack/data" || !reflect.DeepEqual(bind.Options, []string{"rbind", "ro"}) || tmpfs == nil || tmpfs.Type != "tmpfs" {
				t.Errorf("mounts: bind %+v tmpfs %+v", bind, tmpfs)
			}
			a := spec.Annotations
			var owner drivers.Ownership
			if err := json.Unmarshal([]byte(a[AnnotationOwnership]), &owner); err != nil || owner.SpecHash != "abc" || a[AnnotationStack] != "s" || a[AnnotationInstance] != "web" || a["team"] != "a" {
				t.Errorf("annotations %v", a)
			}
			hasNet := false
			for _, ns := range spec.Linux.Namespaces {
				hasNet = hasNet || ns.Type == rspec.NetworkNamespace
			}
			if !hasNet {
				t.Error("no private network namespace")
			}
		})
	}
	// User forms.
	for _, c := range []struct {
		user     string
		uid, gid uint32
		err      bool
	}{{"", 0, 0, false}, {"app", 1000, 1001, false}, {"app:staff", 1000, 50, false}, {"42", 42, 0, false}, {"42:7", 42, 7, false}, {"nobody", 0, 0, true}, {"app:nogroup", 0, 0, true}} {
		uid, gid, err := resolveUser(c.user, rootfs)
		if (err != nil) != c.err || !c.err && (uid != c.uid || gid != c.gid) {
			t.Errorf("user %q: %d:%d %v", c.user, uid, gid, err)
		}
	}
	// Unsupported networks are refused, not ignored.
	inst.Networks = []manifest.Network{{Type: "veth", Bridge: "br0"}}
	if _, err := buildSpec(tg, img, "/b/rootfs", "crun"); !errors.Is(err, drivers.ErrUnsupported) {
		t.Errorf("veth network: %v", err)
	}
}
