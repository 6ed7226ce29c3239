package pvesim

import (
	"strings"
	"testing"
	"time"
)

func TestConfigDigestDeleteAndErrors(t *testing.T) {
	s := newSim(t, Options{})
	waitOK(t, s, createVM(t, s, "100", "memory", "1024", "cores", "1", "onboot", "1"))
	waitOK(t, s, createCT(t, s, "101", "memory", "256"))

	for _, c := range []struct{ kind, id, mismatch string }{
		{"qemu", "100", "checksum mismatch (file change by other user?)"},
		{"lxc", "101", "detected modified configuration - file changed by other user? Try again."},
	} {
		path := "/nodes/pve/" + c.kind + "/" + c.id + "/config"
		var conf map[string]any
		mustOK(t, call(t, s, "GET", path, nil), &conf)
		digest := conf["digest"].(string)
		mustOK(t, call(t, s, "PUT", path, form("cores", "2", "digest", digest)), nil)
		// The digest changed with the write: the old one is now stale.
		wantErr(t, call(t, s, "PUT", path, form("cores", "3", "digest", digest)), 500, c.mismatch)
		wantErr(t, call(t, s, "PUT", path, form()), 500, "no options specified")
		r := call(t, s, "PUT", path, form("delete", "foo"))
		wantErr(t, r, 400, "Parameter verification failed.")
		if e := r.errors(t); e["delete"] != "unknown option 'foo'" {
			t.Fatalf("%s delete errors %v", c.kind, e)
		}
		// Deleting an unset key only warns.
		mustOK(t, call(t, s, "PUT", path, form("delete", "startup")), nil)
		mustOK(t, call(t, s, "PUT", path, form("delete", "onboot,cores", "description", "x")), nil)
		mustOK(t, call(t, s, "GET", path, nil), &conf)
		if _, ok := conf["cores"]; ok {
			t.Fatalf("%s cores not deleted: %v", c.kind, conf)
		}
	}
}

func TestDescriptionAndTagsRoundTrip(t *testing.T) {
	s := newSim(t, Options{})
	waitOK(t, s, createVM(t, s, "100"))
	waitOK(t, s, createCT(t, s, "101"))
	desc := "managed by berth: stack=demo\n100% sure\n"
	for _, c := range []struct{ kind, id, want string }{
		{"qemu", "100", "managed by berth: stack=demo\n100% sure"},
		{"lxc", "101", "managed by berth: stack=demo\n100% sure\n"},
	} {
		path := "/nodes/pve/" + c.kind + "/" + c.id + "/config"
		mustOK(t, callJSON(t, s, "PUT", path, map[string]any{"description": desc, "tags": "Zeta berth-stack;alpha,berth-stack"}), nil)
		var conf map[string]any
		mustOK(t, call(t, s, "GET", path, nil), &conf)
		if conf["description"] != c.want {
			t.Errorf("%s description %q, want %q", c.kind, conf["description"], c.want)
		}
		if conf["tags"] != "alpha;berth-stack;zeta" {
			t.Errorf("%s tags %q", c.kind, conf["tags"])
		}
	}
	var res []map[string]any
	mustOK(t, call(t, s, "GET", "/cluster/resources", form("type", "vm")), &res)
	for _, e := range res {
		if e["vmid"] == float64(100) && e["tags"] != "alpha;berth-stack;zeta" {
			t.Fatalf("resources tags %v", e)
		}
	}
}

func TestPendingVersusHotplug(t *testing.T) {
	s := newSim(t, Options{})
	waitOK(t, s, createVM(t, s, "100", "memory", "1024", "cores", "1", "net0", "virtio,bridge=vmbr0", "start", "1"))
	path := "/nodes/pve/qemu/100/config"
	// cores needs a restart; name is fast-plugged; net1 is hotplugged.
	var upid string
	mustOK(t, call(t, s, "POST", path, form("cores", "4", "name", "renamed", "net1", "virtio,bridge=vmbr1", "delete", "memory")), &upid)
	if !strings.Contains(upid, ":qmconfig:100:") {
		t.Fatalf("POST config upid %q", upid)
	}
	waitOK(t, s, upid)
	var cur, merged map[string]any
	mustOK(t, call(t, s, "GET", path, form("current", "1")), &cur)
	mustOK(t, call(t, s, "GET", path, nil), &merged)
	if cur["cores"] != float64(1) || merged["cores"] != float64(4) {
		t.Fatalf("cores current %v merged %v", cur["cores"], merged["cores"])
	}
	if cur["name"] != "renamed" || cur["net1"] == nil {
		t.Fatalf("fast/hot plug not applied: %v", cur)
	}
	if cur["memory"] != "1024" || merged["memory"] != nil {
		t.Fatalf("memory delete: current %v merged %v", cur["memory"], merged["memory"])
	}
	var pending []map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve/qemu/100/pending", nil), &pending)
	seen := map[string]map[string]any{}
	for _, p := range pending {
		seen[p["key"].(string)] = p
	}
	if p := seen["cores"]; p["value"] != float64(1) || p["pending"] != float64(4) {
		t.Fatalf("pending cores %v", p)
	}
	if p := seen["memory"]; p["delete"] != float64(1) {
		t.Fatalf("pending memory %v", p)
	}
	// A restart applies pending changes.
	mustOK(t, call(t, s, "POST", "/nodes/pve/qemu/100/status/stop", nil), &upid)
	waitOK(t, s, upid)
	mustOK(t, call(t, s, "GET", path, form("current", "1")), &cur)
	if cur["cores"] != float64(4) || cur["memory"] != nil {
		t.Fatalf("after stop %v", cur)
	}

	// LXC: memory is hot-plugged, arch stays pending.
	waitOK(t, s, createCT(t, s, "101", "start", "1"))
	mustOK(t, call(t, s, "PUT", "/nodes/pve/lxc/101/config", form("memory", "2048", "ostype", "alpine")), nil)
	mustOK(t, call(t, s, "GET", "/nodes/pve/lxc/101/config", form("current", "1")), &cur)
	if cur["memory"] != float64(2048) || cur["ostype"] != "debian" {
		t.Fatalf("lxc running update %v", cur)
	}
}

func TestLocksBlockChanges(t *testing.T) {
	s := newSim(t, Options{TaskDurations: map[string]time.Duration{"qmcreate": time.Hour}})
	upid := createVM(t, s, "100")
	wantErr(t, call(t, s, "PUT", "/nodes/pve/qemu/100/config", form("cores", "2")), 500, "VM is locked (create)")
	wantErr(t, call(t, s, "DELETE", "/nodes/pve/qemu/100", nil), 500, "VM is locked (create)")
	mustOK(t, call(t, s, "PUT", "/nodes/pve/qemu/100/config", form("cores", "2", "skiplock", "1")), nil)
	// A killed create worker leaves the lock behind, as on PVE.
	mustOK(t, call(t, s, "DELETE", "/nodes/pve/tasks/"+upid, nil), nil)
	wantErr(t, call(t, s, "PUT", "/nodes/pve/qemu/100/config", form("protection", "1")), 500, "VM is locked (create)")
	mustOK(t, call(t, s, "PUT", "/nodes/pve/qemu/100/config", form("protection", "1", "skiplock", "1")), nil)
	wantErr(t, call(t, s, "DELETE", "/nodes/pve/qemu/100", form("skiplock", "1")), 500, "can't remove VM 100 - protection mode enabled")
}

func TestResourcesStatsLag(t *testing.T) {
	s := newSim(t, Options{StatsLag: time.Hour})
	var res []map[string]any
	mustOK(t, call(t, s, "GET", "/cluster/resources", nil), &res)
	waitOK(t, s, createCT(t, s, "100", "hostname", "fresh", "tags", "a"))
	mustOK(t, call(t, s, "GET", "/cluster/resources", form("type", "vm")), &res)
	var ct map[string]any
	for _, e := range res {
		if e["vmid"] == float64(100) {
			ct = e
		}
	}
	if ct == nil || ct["status"] != "unknown" || ct["name"] != nil || ct["tags"] != "a" || ct["id"] != "lxc/100" {
		t.Fatalf("fresh guest entry %v", ct)
	}
	kinds := map[string]int{}
	mustOK(t, call(t, s, "GET", "/cluster/resources", nil), &res)
	for _, e := range res {
		kinds[e["type"].(string)]++
	}
	if kinds["node"] != 1 || kinds["storage"] != 2 || kinds["qemu"] != 1 || kinds["lxc"] != 1 {
		t.Fatalf("resource types %v", kinds)
	}
}

func TestStorageEndpoints(t *testing.T) {
	s := newSim(t, Options{})
	var list []map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve/storage", form("content", "rootdir")), &list)
	if len(list) != 1 || list[0]["storage"] != "local-lvm" {
		t.Fatalf("storage list %v", list)
	}
	mustOK(t, call(t, s, "GET", "/nodes/pve/storage/local/content", form("content", "vztmpl")), &list)
	if len(list) != 2 {
		t.Fatalf("templates %v", list)
	}
	var upid string
	mustOK(t, call(t, s, "POST", "/nodes/pve/storage/local/download-url", form("url", "https://example.invalid/x.iso", "content", "iso", "filename", "x.iso")), &upid)
	waitOK(t, s, upid)
	var vol map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve/storage/local/content/iso/x.iso", nil), &vol)
	if vol["path"] != "/var/lib/vz/template/iso/x.iso" {
		t.Fatalf("volume %v", vol)
	}
	mustOK(t, call(t, s, "POST", "/nodes/pve/aplinfo", form("storage", "local", "template", "ubuntu-24.04-standard_24.04-2_amd64.tar.zst")), &upid)
	waitOK(t, s, upid)
	waitOK(t, s, createCT(t, s, "100", "ostemplate", "local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst"))
	var conf map[string]any
	mustOK(t, call(t, s, "GET", "/nodes/pve/lxc/100/config", nil), &conf)
	if conf["ostype"] != "ubuntu" {
		t.Fatalf("ostype %v", conf["ostype"])
	}
	wantErr(t, call(t, s, "DELETE", "/nodes/pve/storage/local-lvm/content/vm-100-disk-0", nil), 500, "volume 'local-lvm:vm-100-disk-0' is still in use by CT 100")
	wantErr(t, call(t, s, "GET", "/nodes/nope/storage", nil), 500, "hostname lookup 'nope' failed - failed to get address info for: nope: Name or service not known")
}
