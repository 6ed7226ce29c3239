package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/drivers/proxmox/pvesim"
)

func TestRunDerivesCompactTable(t *testing.T) {
	out := filepath.Join(t.TempDir(), "apischema.json")
	if err := run("testdata/mini-subset.json", out); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var s pvesim.Schema
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.Source["repo_head_commit"] != "abc123" || len(s.Endpoints) != 2 {
		t.Fatalf("schema %+v", s)
	}
	ep := s.Endpoints[0]
	if ep.Method != "POST" || ep.Path != "/nodes/{node}/lxc" || ep.ProxyTo != "node" || !ep.AllowToken || !ep.Protected || ep.Returns != "string" {
		t.Fatalf("endpoint %+v", ep)
	}
	names := []string{}
	for _, p := range ep.Params {
		names = append(names, p.Name)
	}
	if !reflect.DeepEqual(names, []string{"arch", "bwlimit", "net[n]", "vmid"}) {
		t.Fatalf("params not sorted: %v", names)
	}
	vmid := ep.Params[3]
	if vmid.Format != "pve-vmid" || *vmid.Min != 100 || *vmid.Max != 999999999 || vmid.Optional {
		t.Fatalf("vmid %+v", vmid)
	}
	if bw := ep.Params[1]; bw.Min == nil || *bw.Min != 0 {
		t.Fatalf("string minimum not converted: %+v", bw)
	}
	net := ep.Params[2]
	if net.Props["virtio"].Alias != "macaddr" || net.Props["virtio"].KeyAlias != "model" || !net.Props["volume"].DefaultKey || net.Props["name"].Pattern == "" {
		t.Fatalf("property string %+v", net.Props)
	}
	if !reflect.DeepEqual(ep.Params[0].Enum, []string{"amd64", "i386"}) {
		t.Fatalf("enum %v", ep.Params[0].Enum)
	}
	if s.Endpoints[1].Check == nil {
		t.Fatal("permission check dropped")
	}
	if err := run("testdata/missing.json", out); err == nil {
		t.Fatal("missing input accepted")
	}
}
