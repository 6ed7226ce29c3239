package manifest

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestExamples loads every stack in examples/ with the variables their
// comments ask for, and checks a few facts each example promises.
func TestExamples(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.yaml")
	if len(files) < 3 {
		t.Fatalf("want at least 3 examples, found %v", files)
	}
	env := map[string]string{
		"PVE_TOKEN_SECRET": "example-SECRET-token",
		"PVE_FINGERPRINT":  strings.Repeat("AB:", 31) + "AB",
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			st, err := Load(f, LoadOptions{Environ: env})
			if err != nil {
				t.Fatalf("example does not load:\n%v", err)
			}
			if len(st.Warnings) > 0 {
				t.Errorf("warnings: %v", st.Warnings)
			}
			out, _ := json.Marshal(st)
			if strings.Contains(string(out), "SECRET-") {
				t.Errorf("resolved example shows a secret")
			}
		})
	}

	st, err := Load("../examples/quickstart.yaml", LoadOptions{Environ: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	web, cache := st.Instances["web"], st.Instances["cache"]
	if web == nil || cache == nil || web.Backend != BackendCrun || cache.Backend != BackendLXC {
		t.Fatalf("quickstart: want crun web and lxc cache, got %+v", st.Instances)
	}
	if web.DependsOn["cache"].Condition != ConditionHealthy || cache.Healthcheck == nil {
		t.Errorf("quickstart: web must wait for a healthy cache")
	}
	if ref, err := ParseImageRef(web.Image); err != nil || ref.Kind != ImageDir || !filepath.IsAbs(ref.Path) {
		t.Errorf("quickstart: image %q: want an absolute dir: path (%v)", web.Image, err)
	}

	// The Proxmox example refuses to load without its secret, naming it.
	_, err = Load("../examples/proxmox.yaml", LoadOptions{Environ: map[string]string{"PVE_FINGERPRINT": env["PVE_FINGERPRINT"]}})
	if err == nil || !strings.Contains(err.Error(), "required variable PVE_TOKEN_SECRET is missing a value") {
		t.Errorf("proxmox example without PVE_TOKEN_SECRET: err = %v", err)
	}
}
