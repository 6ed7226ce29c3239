package manifest

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// pos is a 1-based line and column in the stack file.
type pos struct{ Line, Col int }

func nodePos(n *yaml.Node) pos {
	if n == nil {
		return pos{}
	}
	return pos{n.Line, n.Column}
}

// location is where one value of the document came from.
type location struct {
	key     pos    // the mapping key (zero for list items and the root)
	value   pos    // the value node
	display string // instances.web.networks[0].ip
}

// positions maps a value's path (JSON-pointer tokens, as the schema
// validator reports them) to its place in the file.
type positions map[string]location

func pathKey(tokens []string) string { return strings.Join(tokens, "\x00") }

func (p positions) set(tokens []string, loc location) { p[pathKey(tokens)] = loc }

// lookup returns the location of tokens, or of its nearest ancestor.
func (p positions) lookup(tokens []string) (location, bool) {
	for n := len(tokens); n >= 0; n-- {
		if loc, ok := p[pathKey(tokens[:n])]; ok {
			if n < len(tokens) {
				loc.display = displayPath(loc.display, tokens[n:])
			}
			return loc, n == len(tokens)
		}
	}
	return location{display: displayPath("", tokens)}, false
}

// displayPath appends tokens to a display path; numeric tokens render as
// list indexes.
func displayPath(base string, tokens []string) string {
	var b strings.Builder
	b.WriteString(base)
	for _, t := range tokens {
		if _, err := strconv.Atoi(t); err == nil && b.Len() > 0 {
			b.WriteString("[" + t + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(t)
	}
	return b.String()
}

// secretKeys are the fields whose values never appear in any message.
var secretKeys = map[string]bool{"token_secret": true, "password": true}

func isSecretPath(tokens []string) bool {
	return len(tokens) > 0 && secretKeys[tokens[len(tokens)-1]]
}

// interpolateTree expands variables in every scalar value of the document
// (keys are left alone, as in Compose), in place. Alias nodes are skipped:
// their anchors are expanded where they are defined, exactly once. It
// returns the set of nodes whose text held a $.
//
// Scalars that fail to interpolate are reported and marked false in the
// returned map, so the tree builder can leave them out.
func interpolateTree(root *yaml.Node, lookup lookupFunc, errs *errorList, warn func(string)) map[*yaml.Node]bool {
	changed := map[*yaml.Node]bool{}
	var walk func(n *yaml.Node, tokens []string, depth int)
	walk = func(n *yaml.Node, tokens []string, depth int) {
		if n == nil || depth > maxDepth {
			return
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, tokens, depth+1)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], append(tokens[:len(tokens):len(tokens)], n.Content[i].Value), depth+1)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, append(tokens[:len(tokens):len(tokens)], strconv.Itoa(i)), depth+1)
			}
		case yaml.ScalarNode:
			r, err := interpolate(n.Value, lookup)
			if err != nil {
				msg := err.Error()
				if _, required := err.(requiredVarError); !required && isSecretPath(tokens) {
					msg = "invalid interpolation in a secret (value not shown): write $$ for a literal $"
				}
				errs.add(nodePos(n), displayPath("", tokens), "%s", msg)
				changed[n] = false
				return
			}
			for _, name := range r.unset {
				warn(fmt.Sprintf("%s: variable %s is not set, using an empty string", displayPath("", tokens), name))
			}
			if r.changed {
				n.Value = r.value
				changed[n] = true
			}
		}
	}
	walk(root, nil, 0)
	return changed
}

// maxDepth bounds nesting, and maxNodes bounds alias expansion (a "billion
// laughs" document), so no input can exhaust the loader.
const (
	maxDepth = 100
	maxNodes = 20000
)

// interpolated marks a scalar whose text came from interpolation; the schema
// cast turns it into the type the schema wants at its place.
type interpolated string

// treeBuilder turns the YAML node tree into generic JSON values
// (map[string]any, []any, string, int64, float64, bool, nil) and records
// every value's position.
type treeBuilder struct {
	pos      positions
	changed  map[*yaml.Node]bool // true: interpolated; false: interpolation failed
	errs     *errorList
	nodes    int
	tooLarge bool       // the document hit maxNodes or maxDepth
	failed   [][]string // paths of values whose interpolation failed
}

func (b *treeBuilder) build(n *yaml.Node, tokens []string, display string, depth int) any {
	b.nodes++
	if b.nodes > maxNodes || depth > maxDepth {
		b.tooLarge = true
		if b.nodes == maxNodes+1 || depth == maxDepth+1 {
			b.errs.add(nodePos(n), display, "document too large or too deeply nested (aliases expand to more than %d values)", maxNodes)
		}
		return nil
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return b.build(n.Content[0], tokens, display, depth+1)
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil
		}
		return b.build(n.Alias, tokens, display, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			t := append(tokens[:len(tokens):len(tokens)], strconv.Itoa(i))
			d := display + "[" + strconv.Itoa(i) + "]"
			b.pos.set(t, location{value: nodePos(c), display: d})
			out = append(out, b.build(c, t, d, depth+1))
		}
		return out
	case yaml.MappingNode:
		out := map[string]any{}
		explicit := map[string]bool{}
		var merges []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
				merges = append(merges, v)
				continue
			}
			if k.Kind != yaml.ScalarNode {
				b.errs.add(nodePos(k), display, "a mapping key must be a plain value, not a list or mapping")
				continue
			}
			name := k.Value
			t := append(tokens[:len(tokens):len(tokens)], name)
			d := name
			if display != "" {
				d = display + "." + name
			}
			if explicit[name] {
				b.errs.add(nodePos(k), d, "duplicate key %q (first defined at line %d)", name, b.pos[pathKey(t)].key.Line)
				continue
			}
			explicit[name] = true
			b.pos.set(t, location{key: nodePos(k), value: nodePos(v), display: d})
			out[name] = b.build(v, t, d, depth+1)
		}
		// Merge keys (<<: *anchor, or a list of anchors): keys written in
		// the mapping win, then earlier anchors over later ones (YAML 1.1).
		for _, m := range merges {
			srcs := []*yaml.Node{m}
			if resolveAlias(m).Kind == yaml.SequenceNode {
				srcs = resolveAlias(m).Content
			}
			for _, s := range srcs {
				s = resolveAlias(s)
				if s.Kind != yaml.MappingNode {
					b.errs.add(nodePos(m), display, "<< (merge key) needs a mapping or a list of mappings")
					continue
				}
				for i := 0; i+1 < len(s.Content); i += 2 {
					k, v := s.Content[i], s.Content[i+1]
					if k.Kind != yaml.ScalarNode {
						continue
					}
					if _, done := out[k.Value]; done || explicit[k.Value] {
						continue
					}
					t := append(tokens[:len(tokens):len(tokens)], k.Value)
					d := k.Value
					if display != "" {
						d = display + "." + k.Value
					}
					b.pos.set(t, location{key: nodePos(k), value: nodePos(v), display: d})
					out[k.Value] = b.build(v, t, d, depth+1)
				}
			}
		}
		return out
	case yaml.ScalarNode:
		ok, seen := b.changed[n]
		if seen && !ok {
			b.failed = append(b.failed, append([]string{}, tokens...))
			return nil
		}
		if ok {
			return interpolated(n.Value)
		}
		return scalarValue(n)
	}
	return nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < maxDepth; i++ {
		n = n.Alias
	}
	return n
}

// scalarValue decodes a scalar by its YAML tag. Timestamps and binary data
// stay text; integers too large for int64 become float64.
func scalarValue(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var v bool
		if n.Decode(&v) == nil {
			return v
		}
	case "!!int":
		var v int64
		if n.Decode(&v) == nil {
			return v
		}
		var f float64
		if n.Decode(&f) == nil {
			return f
		}
	case "!!float":
		var v float64
		if n.Decode(&v) == nil && !math.IsInf(v, 0) && !math.IsNaN(v) {
			return v
		}
	}
	return n.Value
}
