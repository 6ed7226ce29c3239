package manifest

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/berth-dev/berth/schema"
)

// objectSchema returns the object branch (the one with properties) of the
// schema at a path of property names below a definition.
func objectSchema(t *testing.T, n *schemaNav, start any, path ...string) map[string]any {
	t.Helper()
	ss := n.resolve(start, nil, 0)
	for _, p := range path {
		if p == "[]" {
			ss = n.item(ss, 0)
			continue
		}
		if p == "*" {
			var next []map[string]any
			for _, s := range ss {
				if ap, ok := s["additionalProperties"]; ok {
					next = n.resolve(ap, next, 0)
				}
			}
			ss = next
			continue
		}
		ss = n.child(ss, p)
	}
	for _, s := range ss {
		if _, ok := s["properties"]; ok {
			return s
		}
	}
	t.Fatalf("no object schema at %v", path)
	return nil
}

// TestSchemaMatchesTypes keeps the schema (the source of truth for the
// file's structure) and the typed structs in step: every property of each
// object in the schema is a json field of its struct and the other way round.
func TestSchemaMatchesTypes(t *testing.T) {
	n, err := getNav()
	if err != nil {
		t.Fatal(err)
	}
	root := n.root
	cases := []struct {
		typ  any
		at   any
		path []string
	}{
		{Stack{}, root, nil},
		{Provider{}, n.def("provider"), nil},
		{TLS{}, n.def("provider"), []string{"tls"}},
		{Instance{}, n.def("instance"), nil},
		{Dependency{}, n.def("instance"), []string{"depends_on", "*"}},
		{Healthcheck{}, n.def("instance"), []string{"healthcheck"}},
		{Network{}, n.def("instance"), []string{"networks", "[]"}},
		{Mount{}, n.def("instance"), []string{"mounts", "[]"}},
		{Template{}, n.def("instance"), []string{"template"}},
		{Disk{}, n.def("disk"), nil},
		{Clone{}, n.def("instance"), []string{"clone"}},
		{CloudInit{}, n.def("instance"), []string{"cloud_init"}},
	}
	for _, c := range cases {
		rt := reflect.TypeOf(c.typ)
		t.Run(rt.Name(), func(t *testing.T) {
			var fields []string
			for i := 0; i < rt.NumField(); i++ {
				name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
				if name != "-" && name != "" {
					fields = append(fields, name)
				}
			}
			props := propertyNames([]map[string]any{objectSchema(t, n, c.at, c.path...)})
			sort.Strings(fields)
			if strings.Join(fields, " ") != strings.Join(props, " ") {
				t.Errorf("struct %s fields and schema properties differ:\nstruct: %v\nschema: %v", rt.Name(), fields, props)
			}
		})
	}
}

// TestSchemaDocumented checks that every instance and provider property has
// a description (what editors show on hover) and that the $id is the one
// the README tells editors to use.
func TestSchemaDocumented(t *testing.T) {
	n, err := getNav()
	if err != nil {
		t.Fatal(err)
	}
	if n.root["$id"] != schema.ID {
		t.Errorf("$id = %v, want %s", n.root["$id"], schema.ID)
	}
	for _, def := range []string{"instance", "provider", "disk"} {
		for name, p := range asMap(n.def(def)["properties"]) {
			m := asMap(p)
			if _, ok := m["description"]; !ok {
				if ref, _ := m["$ref"].(string); ref != "" {
					if _, ok := n.def(strings.TrimPrefix(ref, "#/$defs/"))["description"]; ok {
						continue
					}
				}
				t.Errorf("%s.%s has no description", def, name)
			}
		}
	}
	if _, err := schema.Validator(); err != nil {
		t.Fatal(err)
	}
}

// TestApplicability reads the per-backend table from the schema's if/then
// blocks, the same table the "does not apply" messages use.
func TestApplicability(t *testing.T) {
	tests := []struct {
		field, backend string
		want           bool
	}{
		{"image", BackendCrun, true},
		{"image", BackendRunc, true},
		{"image", BackendLXC, false},
		{"image", BackendProxmoxVM, false},
		{"template", BackendLXC, true},
		{"template", BackendCrun, false},
		{"vmid", BackendProxmoxLXC, true},
		{"vmid", BackendProxmoxVM, true},
		{"vmid", BackendLXC, false},
		{"clone", BackendProxmoxVM, true},
		{"clone", BackendRunc, false},
		{"cloud_init", BackendProxmoxLXC, true},
		{"cloud_init", BackendLXC, false},
		{"ostemplate", BackendProxmoxVM, false},
		{"memory", BackendProxmoxVM, true},
		{"healthcheck", BackendLXC, true},
		{"healthcheck", BackendProxmoxLXC, false},
		{"environment", BackendProxmoxLXC, true},
		{"environment", BackendProxmoxVM, false},
	}
	for _, tt := range tests {
		if got := Applies(tt.field, tt.backend); got != tt.want {
			t.Errorf("Applies(%s, %s) = %v, want %v", tt.field, tt.backend, got, tt.want)
		}
	}
}
