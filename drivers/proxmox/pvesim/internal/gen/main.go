// Command gen derives the simulator's compact parameter table
// (apischema.json) from the PVE API subset published with the project's
// Proxmox reference data (api-subset.json, converted from pve-docs
// api-viewer/apidata.js). Descriptions are dropped; every property that
// validation or config typing needs is kept. It fills pvesim's own schema
// types, so the table it writes is the one the simulator reads.
//
//	go run ./drivers/proxmox/pvesim/internal/gen -in /path/to/api-subset.json -out drivers/proxmox/pvesim/apischema.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"

	"github.com/berth-dev/berth/drivers/proxmox/pvesim"
)

func main() {
	in := flag.String("in", "", "path to api-subset.json")
	out := flag.String("out", "apischema.json", "output file")
	flag.Parse()
	if *in == "" {
		fmt.Fprintln(os.Stderr, "gen: -in is required (path to api-subset.json)")
		os.Exit(2)
	}
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	raw, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var src struct {
		Source    map[string]any   `json:"_source"`
		Endpoints []map[string]any `json:"endpoints"`
	}
	if err := json.Unmarshal(raw, &src); err != nil {
		return fmt.Errorf("parse %s: %w", in, err)
	}
	s := pvesim.Schema{Source: map[string]string{}}
	for _, k := range []string{"repository", "path", "repo_head_commit", "pve_version", "apidata_last_changed_in"} {
		if v, ok := src.Source[k].(string); ok {
			s.Source[k] = v
		}
	}
	for _, e := range src.Endpoints {
		ep := &pvesim.Endpoint{
			Method:     str(e["method"]),
			Path:       str(e["path"]),
			Name:       str(e["name"]),
			Protected:  truthy(e["protected"]),
			ProxyTo:    str(e["proxyto"]),
			AllowToken: truthy(e["allowtoken"]),
		}
		if perm, ok := e["permissions"].(map[string]any); ok {
			ep.Check, _ = perm["check"].([]any)
		}
		if r, ok := e["returns"].(map[string]any); ok {
			ep.Returns = str(r["type"])
		}
		params, _ := e["parameters"].([]any)
		for _, p := range params {
			pm, _ := p.(map[string]any)
			ep.Params = append(ep.Params, param(str(pm["name"]), pm))
		}
		sort.Slice(ep.Params, func(i, j int) bool { return ep.Params[i].Name < ep.Params[j].Name })
		s.Endpoints = append(s.Endpoints, ep)
	}
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(b, '\n'), 0o644)
}

func param(name string, m map[string]any) *pvesim.Param {
	p := &pvesim.Param{
		Name:       name,
		Type:       str(m["type"]),
		Optional:   truthy(m["optional"]),
		Pattern:    str(m["pattern"]),
		Min:        num(m["minimum"]),
		Max:        num(m["maximum"]),
		MaxLength:  intp(m["maxLength"]),
		MinLength:  intp(m["minLength"]),
		DefaultKey: truthy(m["default_key"]),
		Alias:      str(m["alias"]),
		KeyAlias:   str(m["keyAlias"]),
		Requires:   str(m["requires"]),
	}
	if d, ok := m["default"]; ok {
		p.Default = d
	}
	if en, ok := m["enum"].([]any); ok {
		for _, v := range en {
			p.Enum = append(p.Enum, fmt.Sprint(v))
		}
	}
	switch f := m["format"].(type) {
	case string:
		p.Format = f
	case map[string]any:
		p.Props = map[string]*pvesim.Param{}
		for k, v := range f {
			vm, _ := v.(map[string]any)
			p.Props[k] = param(k, vm)
		}
	}
	return p
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func truthy(v any) bool {
	switch x := v.(type) {
	case float64:
		return x != 0
	case bool:
		return x
	case string:
		return x == "1"
	}
	return false
}

func num(v any) *float64 {
	switch x := v.(type) {
	case float64:
		return &x
	case string:
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return &f
		}
	}
	return nil
}

func intp(v any) *int {
	if f := num(v); f != nil {
		i := int(*f)
		return &i
	}
	return nil
}
