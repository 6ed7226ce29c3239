package manifest

import (
	"encoding/json"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/schema"
)

// schemaNav reads the stack schema document itself: which types a value
// may have at a place (to cast interpolated text as Compose does), which
// properties an object has (for "did you mean"), and which fields apply to
// which backend (from the schema's if/then blocks).
type schemaNav struct {
	root map[string]any
	// applies[def][field] lists the discriminator values the field is
	// allowed with (def "instance": backends; def "provider": types).
	applies map[string]map[string][]string
}

var (
	navOnce sync.Once
	nav     *schemaNav
	navErr  error
)

func getNav() (*schemaNav, error) {
	navOnce.Do(func() {
		doc, err := schema.Document()
		if err != nil {
			navErr = err
			return
		}
		nav = &schemaNav{root: doc, applies: map[string]map[string][]string{}}
		nav.applies["instance"] = nav.applicability("instance", "backend")
		nav.applies["provider"] = nav.applicability("provider", "type")
	})
	return nav, navErr
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

func (n *schemaNav) def(name string) map[string]any {
	return asMap(asMap(n.root["$defs"])[name])
}

// applicability reads a definition's allOf if/then blocks of the form
// if {discriminator: const|enum} then {properties: {field: false}}.
func (n *schemaNav) applicability(defName, disc string) map[string][]string {
	d := n.def(defName)
	var all []string
	if e, ok := asMap(asMap(d["properties"])[disc])["enum"].([]any); ok {
		for _, v := range e {
			all = append(all, toString(v))
		}
	}
	banned := map[string]map[string]bool{} // field -> values it is banned for
	blocks, _ := d["allOf"].([]any)
	for _, blk := range blocks {
		cond := asMap(asMap(asMap(asMap(blk)["if"])["properties"])[disc])
		var vals []string
		if c, ok := cond["const"]; ok {
			vals = append(vals, toString(c))
		}
		if e, ok := cond["enum"].([]any); ok {
			for _, v := range e {
				vals = append(vals, toString(v))
			}
		}
		for field, s := range asMap(asMap(asMap(blk)["then"])["properties"]) {
			if b, ok := s.(bool); ok && !b {
				if banned[field] == nil {
					banned[field] = map[string]bool{}
				}
				for _, v := range vals {
					banned[field][v] = true
				}
			}
		}
	}
	out := map[string][]string{}
	for field := range asMap(d["properties"]) {
		for _, v := range all {
			if !banned[field][v] {
				out[field] = append(out[field], v)
			}
		}
	}
	return out
}

// Applies reports whether an instance field (a stack file key such as
// "image") may be used with a backend, as the schema says.
func Applies(field, backend string) bool {
	n, err := getNav()
	if err != nil {
		return false
	}
	for _, b := range n.applies["instance"][field] {
		if b == backend {
			return true
		}
	}
	return false
}

func toString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return t.String()
	case bool:
		return strconv.FormatBool(t)
	}
	return ""
}

// resolve expands a schema into the object schemas a value may match:
// it follows $ref and splits anyOf/oneOf into their branches.
func (n *schemaNav) resolve(s any, out []map[string]any, depth int) []map[string]any {
	if depth > 20 {
		return out
	}
	switch t := s.(type) {
	case bool:
		if t {
			out = append(out, map[string]any{})
		}
		return out
	case map[string]any:
		if ref, ok := t["$ref"].(string); ok && strings.HasPrefix(ref, "#/$defs/") {
			out = n.resolve(n.def(strings.TrimPrefix(ref, "#/$defs/")), out, depth+1)
		}
		branches := false
		for _, kw := range []string{"anyOf", "oneOf"} {
			if bs, ok := t[kw].([]any); ok {
				branches = true
				for _, b := range bs {
					out = n.resolve(b, out, depth+1)
				}
			}
		}
		if !branches {
			if _, ok := t["$ref"]; !ok || len(t) > 2 {
				out = append(out, t)
			}
		}
	}
	return out
}

// child returns the schemas for property key of an object matching ss.
func (n *schemaNav) child(ss []map[string]any, key string) []map[string]any {
	var out []map[string]any
	for _, s := range ss {
		if p, ok := asMap(s["properties"])[key]; ok {
			out = n.resolve(p, out, 0)
			continue
		}
		matched := false
		for pat, p := range asMap(s["patternProperties"]) {
			if re, err := regexp.Compile(pat); err == nil && re.MatchString(key) {
				out = n.resolve(p, out, 0)
				matched = true
			}
		}
		if !matched {
			if ap, ok := s["additionalProperties"]; ok {
				out = n.resolve(ap, out, 0)
			}
		}
	}
	return out
}

// item returns the schemas for list item i of a list matching ss.
func (n *schemaNav) item(ss []map[string]any, i int) []map[string]any {
	var out []map[string]any
	for _, s := range ss {
		if pi, ok := s["prefixItems"].([]any); ok && i < len(pi) {
			out = n.resolve(pi[i], out, 0)
			continue
		}
		if it, ok := s["items"]; ok {
			out = n.resolve(it, out, 0)
		}
	}
	return out
}

// at returns the schemas for the value at tokens.
func (n *schemaNav) at(tokens []string, doc any) []map[string]any {
	ss := n.resolve(n.root, nil, 0)
	v := doc
	for _, t := range tokens {
		switch cur := v.(type) {
		case []any:
			i, _ := strconv.Atoi(t)
			ss = n.item(ss, i)
			if i >= 0 && i < len(cur) {
				v = cur[i]
			} else {
				v = nil
			}
		default:
			ss = n.child(ss, t)
			v = asMap(v)[t]
		}
	}
	return ss
}

// propertyNames lists the declared properties of the objects ss.
func propertyNames(ss []map[string]any) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		for k := range asMap(s["properties"]) {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// typesOf returns the JSON types the schemas ss accept ("string",
// "integer", ...), and whether one of them accepts any string at all.
func typesOf(ss []map[string]any) (types map[string]bool, freeString bool) {
	types = map[string]bool{}
	for _, s := range ss {
		var ts []string
		switch t := s["type"].(type) {
		case string:
			ts = []string{t}
		case []any:
			for _, x := range t {
				ts = append(ts, toString(x))
			}
		}
		_, hasEnum := s["enum"]
		_, hasConst := s["const"]
		_, hasPattern := s["pattern"]
		if len(ts) == 0 && !hasEnum && !hasConst {
			freeString = true // {} or an extension: anything goes
		}
		for _, t := range ts {
			types[t] = true
			if t == "string" && !hasEnum && !hasConst && !hasPattern {
				freeString = true
			}
		}
	}
	return types, freeString
}

// castInterpolated replaces every interpolated string in v with the value
// the schema wants there: text stays text where any string is allowed;
// otherwise text that reads as an integer, number or boolean becomes one
// (so `cpus: ${CPUS}` is a number and `vmid: ${ID:-auto}` works).
func (n *schemaNav) castInterpolated(v any, ss []map[string]any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			t[k] = n.castInterpolated(c, n.child(ss, k))
		}
		return t
	case []any:
		for i, c := range t {
			t[i] = n.castInterpolated(c, n.item(ss, i))
		}
		return t
	case interpolated:
		s := string(t)
		types, free := typesOf(ss)
		if free || enumHas(ss, s) {
			return s
		}
		if types["integer"] || types["number"] || enumHasNumber(ss) {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return i
			}
		}
		if types["number"] {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				return f
			}
		}
		if types["boolean"] {
			if b, err := strconv.ParseBool(s); err == nil {
				return b
			}
		}
		return s
	}
	return v
}

func enumHas(ss []map[string]any, s string) bool {
	for _, sc := range ss {
		if c, ok := sc["const"].(string); ok && c == s {
			return true
		}
		if e, ok := sc["enum"].([]any); ok {
			for _, x := range e {
				if x2, ok := x.(string); ok && x2 == s {
					return true
				}
			}
		}
	}
	return false
}

func enumHasNumber(ss []map[string]any) bool {
	for _, sc := range ss {
		if e, ok := sc["enum"].([]any); ok {
			for _, x := range e {
				if _, ok := x.(json.Number); ok {
					return true
				}
			}
		}
	}
	return false
}
