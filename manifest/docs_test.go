package manifest

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"testing"

	"github.com/berth-dev/berth/schema"
)

// TestEveryFieldDocumented: every property the JSON Schema knows (top
// level, providers, instances and what nests in them) shows up in
// docs/stack-file.md, as a YAML key in an example or as `name`.
func TestEveryFieldDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/stack-file.md")
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(schema.JSON(), &root); err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{} // path -> key
	var walk func(node any, path string)
	walk = func(node any, path string) {
		m, ok := node.(map[string]any)
		if !ok {
			return
		}
		if props, ok := m["properties"].(map[string]any); ok {
			for k, v := range props {
				fields[path+k] = k
				walk(v, path+k+".")
			}
		}
		for _, k := range []string{"items", "additionalProperties"} {
			walk(m[k], path+"[].")
		}
		for _, k := range []string{"oneOf", "anyOf", "allOf"} {
			if l, ok := m[k].([]any); ok {
				for _, x := range l {
					walk(x, path)
				}
			}
		}
	}
	walk(root, "")
	defs, _ := root["$defs"].(map[string]any)
	for name, d := range defs {
		walk(d, name+".")
	}
	if len(fields) < 50 {
		t.Fatalf("only %d schema properties found: is the walk broken?", len(fields))
	}
	var missing []string
	for path, key := range fields {
		q := regexp.QuoteMeta(key)
		if !regexp.MustCompile("(^|[\\s`{,(\\-])" + q + `\s*:|` + "`" + q + "`").Match(doc) {
			missing = append(missing, path)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("docs/stack-file.md does not document %v", missing)
	}
}
