package manifest

import (
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// normalizer rewrites the schema-valid generic document into the one
// canonical shape the typed structs decode: Compose's short forms become
// their long forms and defaults are filled in. Problems the schema cannot
// see (a size that does not parse, an unterminated quote) are reported at
// their positions.
type normalizer struct {
	pos    positions
	errs   *errorList
	lookup lookupFunc
	dir    string
	pruned *pruned // values that fail here are cut too, like schema errors
}

// fail reports a problem with the value at tokens and cuts it from m[key].
func (n *normalizer) fail(m map[string]any, key string, tokens []string, format string, args ...any) {
	loc := n.at(tokens...)
	n.errs.add(loc.value, loc.display, format, args...)
	delete(m, key)
	if n.pruned != nil {
		n.pruned.mark(tokens)
	}
}

// Defaults applied by Load (Compose's where Compose has one).
const (
	DefaultHealthInterval  = 30 * time.Second
	DefaultHealthTimeout   = 30 * time.Second
	DefaultHealthRetries   = 3
	DefaultStopGracePeriod = 10 * time.Second
)

var composeConditions = map[string]string{
	"service_started":                ConditionStarted,
	"service_healthy":                ConditionHealthy,
	"service_completed_successfully": ConditionCompleted,
}

func (n *normalizer) at(tokens ...string) location {
	loc, _ := n.pos.lookup(tokens)
	return loc
}

func (n *normalizer) abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if strings.HasPrefix(p, "~/") {
		if home, ok := n.lookup("HOME"); ok && home != "" {
			return filepath.Join(home, p[2:])
		}
	}
	return filepath.Join(n.dir, p)
}

func dropExtensions(m map[string]any) {
	for k := range m {
		if strings.HasPrefix(k, "x-") {
			delete(m, k)
		}
	}
}

func (n *normalizer) document(doc map[string]any) {
	dropExtensions(doc)
	doc["version"] = int64(1)
	for name, p := range asMap(doc["providers"]) {
		n.provider(name, asMap(p))
	}
	for name, inst := range asMap(doc["instances"]) {
		n.instance(name, asMap(inst))
	}
}

func (n *normalizer) provider(name string, p map[string]any) {
	dropExtensions(p)
	for _, k := range []string{"lxcpath", "root"} {
		if s, ok := p[k].(string); ok {
			p[k] = n.abs(s)
		}
	}
	if tls := asMap(p["tls"]); tls != nil {
		if s, ok := tls["ca_file"].(string); ok {
			tls["ca_file"] = n.abs(s)
		}
		if s, ok := tls["fingerprint"].(string); ok {
			tls["fingerprint"] = strings.ToUpper(strings.ReplaceAll(s, ":", ""))
		}
	}
}

func (n *normalizer) instance(name string, in map[string]any) {
	dropExtensions(in)
	base := []string{"instances", name}
	tok := func(more ...string) []string { return append(append([]string{}, base...), more...) }

	if v, ok := in["environment"]; ok {
		in["environment"] = n.keyValues(v, tok("environment"), true)
	}
	if v, ok := in["labels"]; ok {
		in["labels"] = n.keyValues(v, tok("labels"), false)
	}
	if v, ok := in["depends_on"]; ok {
		in["depends_on"] = n.dependsOn(v, tok("depends_on"))
	}
	for _, k := range []string{"command", "entrypoint"} {
		if s, ok := in[k].(string); ok {
			words, err := SplitCommand(s)
			if err != nil {
				n.fail(in, k, tok(k), "%v", err)
				continue
			}
			in[k] = stringsToAny(words)
		}
	}
	for _, k := range []string{"memory", "swap"} {
		n.size(in, k, tok(k))
	}
	if s, ok := in["cpus"].(string); ok {
		f, _ := strconv.ParseFloat(s, 64)
		in["cpus"] = f
	}
	n.duration(in, "stop_grace_period", tok("stop_grace_period"))
	if _, ok := in["stop_grace_period"]; !ok {
		in["stop_grace_period"] = DefaultStopGracePeriod.String()
	}
	if hc := asMap(in["healthcheck"]); hc != nil {
		n.healthcheck(hc, tok("healthcheck"))
	}
	if ms, ok := in["mounts"].([]any); ok {
		for i, m := range ms {
			ms[i] = n.mount(m, tok("mounts", strconv.Itoa(i)))
		}
	}
	switch t := in["template"].(type) {
	case string:
		in["template"] = map[string]any{"type": t}
	case nil:
		if in["backend"] == BackendLXC {
			in["template"] = map[string]any{"type": "busybox"}
		}
	}
	if t := asMap(in["template"]); t != nil {
		for _, k := range []string{"rootfs", "meta"} {
			if s, ok := t[k].(string); ok {
				t[k] = n.abs(s)
			}
		}
		if s, ok := t["image"].(string); ok {
			if ref, err := ParseImageRef("oci:" + s); err == nil {
				t["image"] = strings.TrimPrefix(ref.absolute(n.dir).String(), "oci:")
			}
		}
	}
	if s, ok := in["image"].(string); ok {
		ref, err := ParseImageRef(s)
		if err != nil {
			n.fail(in, "image", tok("image"), "%v", err)
		} else {
			in["image"] = ref.absolute(n.dir).String()
		}
	}
	switch c := in["clone"].(type) {
	case string:
		in["clone"] = map[string]any{"template": c}
	case int64:
		in["clone"] = map[string]any{"template": strconv.FormatInt(c, 10)}
	case map[string]any:
		if id, ok := c["template"].(int64); ok {
			c["template"] = strconv.FormatInt(id, 10)
		}
	}
	if r := asMap(in["rootfs"]); r != nil {
		n.size(r, "size", tok("rootfs", "size"))
	}
	if ds, ok := in["disks"].([]any); ok {
		for i, d := range ds {
			n.size(asMap(d), "size", tok("disks", strconv.Itoa(i), "size"))
		}
	}
	if vmid, ok := in["vmid"].(string); ok && vmid == "auto" {
		delete(in, "vmid")
	}
}

// keyValues turns Compose's list or map form into a map of strings. In the
// list form a bare KEY (and in the map form a null value) takes its value
// from berth's environment when fromEnv is set, and is left out if unset.
func (n *normalizer) keyValues(v any, tokens []string, fromEnv bool) map[string]any {
	out := map[string]any{}
	bare := func(k string) {
		if !fromEnv {
			out[k] = ""
			return
		}
		if val, ok := n.lookup(k); ok {
			out[k] = val
		}
	}
	switch t := v.(type) {
	case []any:
		for i, item := range t {
			s, _ := item.(string)
			k, val, hasEq := strings.Cut(s, "=")
			k = strings.TrimSpace(k)
			if loc, ok := n.pos.lookup(append(tokens[:len(tokens):len(tokens)], strconv.Itoa(i))); ok {
				n.pos.set(append(tokens[:len(tokens):len(tokens)], k), location{key: loc.value, value: loc.value, display: displayPath(n.at(tokens...).display, []string{k})})
			}
			if _, dup := out[k]; dup {
				loc := n.at(append(tokens[:len(tokens):len(tokens)], strconv.Itoa(i))...)
				n.errs.add(loc.value, loc.display, "%s is set twice", k)
			}
			if !hasEq {
				bare(k)
				continue
			}
			out[k] = val
		}
	case map[string]any:
		for k, val := range t {
			switch x := val.(type) {
			case nil:
				bare(k)
			case string:
				out[k] = x
			case bool:
				out[k] = strconv.FormatBool(x)
			case int64:
				out[k] = strconv.FormatInt(x, 10)
			case float64:
				out[k] = strconv.FormatFloat(x, 'f', -1, 64)
			}
		}
	}
	return out
}

// dependsOn turns a list of names into the map form and makes conditions
// canonical (started, healthy, completed).
func (n *normalizer) dependsOn(v any, tokens []string) map[string]any {
	out := map[string]any{}
	switch t := v.(type) {
	case []any:
		for i, item := range t {
			s, _ := item.(string)
			if loc, ok := n.pos.lookup(append(tokens[:len(tokens):len(tokens)], strconv.Itoa(i))); ok {
				n.pos.set(append(tokens[:len(tokens):len(tokens)], s), location{key: loc.value, value: loc.value, display: displayPath(n.at(tokens...).display, []string{s})})
			}
			out[s] = map[string]any{"condition": ConditionStarted}
		}
	case map[string]any:
		for name, d := range t {
			dep := asMap(d)
			if dep == nil {
				dep = map[string]any{}
			}
			c, _ := dep["condition"].(string)
			if canon, ok := composeConditions[c]; ok {
				c = canon
			}
			if c == "" {
				c = ConditionStarted
			}
			dep["condition"] = c
			out[name] = dep
		}
	}
	return out
}

func (n *normalizer) healthcheck(hc map[string]any, tokens []string) {
	switch t := hc["test"].(type) {
	case string:
		hc["test"] = []any{"CMD-SHELL", t}
	case []any:
		if len(t) > 0 && t[0] == "NONE" {
			hc["disable"] = true
		}
	}
	for _, k := range []string{"interval", "timeout", "start_period"} {
		n.duration(hc, k, append(tokens[:len(tokens):len(tokens)], k))
	}
	if _, ok := hc["interval"]; !ok {
		hc["interval"] = DefaultHealthInterval.String()
	}
	if _, ok := hc["timeout"]; !ok {
		hc["timeout"] = DefaultHealthTimeout.String()
	}
	// Absent or 0 means the default, as in Docker (0 = "inherit").
	if r, _ := hc["retries"].(int64); r == 0 {
		hc["retries"] = int64(DefaultHealthRetries)
	}
	if _, ok := hc["start_period"]; !ok {
		hc["start_period"] = "0s"
	}
}

// mount turns "SOURCE:TARGET[:ro]" into the long form and makes bind
// sources absolute against the stack file's directory.
func (n *normalizer) mount(v any, tokens []string) any {
	m := asMap(v)
	if s, ok := v.(string); ok {
		parts := strings.Split(s, ":")
		m = map[string]any{"type": "bind", "source": parts[0], "target": parts[1]}
		if len(parts) == 3 && parts[2] == "ro" {
			m["read_only"] = true
		}
	}
	if m == nil {
		return v
	}
	if _, ok := m["type"]; !ok {
		if _, hasSrc := m["source"]; hasSrc {
			m["type"] = "bind"
		} else {
			m["type"] = "tmpfs"
		}
	}
	if m["type"] == "bind" {
		if s, ok := m["source"].(string); ok {
			m["source"] = n.abs(s)
		}
	}
	return m
}

func (n *normalizer) size(m map[string]any, key string, tokens []string) {
	s, ok := m[key].(string)
	if !ok {
		return
	}
	b, err := ParseByteSize(s)
	if err != nil {
		n.fail(m, key, tokens, "%v", err)
		return
	}
	m[key] = int64(b)
}

func (n *normalizer) duration(m map[string]any, key string, tokens []string) {
	s, ok := m[key].(string)
	if !ok {
		return
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		n.fail(m, key, tokens, "%q is not a duration: want e.g. 30s, 1m30s, 500ms", s)
		return
	}
	m[key] = time.Duration(d).String()
}

func stringsToAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
