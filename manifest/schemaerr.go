package manifest

import (
	"errors"
	"fmt"
	"sort"

	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// patternHelp explains the schema's regular expressions in words, keyed by
// the pattern text. A pattern missing here falls back to "must match".
var patternHelp = map[string]string{
	`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`:                   "must be a valid host name label: lowercase letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit",
	`^[0-9]+(\.[0-9]+)?[ ]?([kKmMgGtT]([iI]?[bB])?|[bB])?$`:  "not a size: want a number with an optional unit k, M, G or T, e.g. 256M or 2G",
	`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`:              "not a duration: want a number with a unit ms, s, m or h, e.g. 30s or 1m30s",
	`^[0-9]+(\.[0-9]+)?$`:                                    "not a number of CPUs: want e.g. 0.5 or 2",
	`^https?://[^/]+(/.*)?$`:                                 "must be an http:// or https:// URL, e.g. https://pve.example.com:8006",
	`^[^@!\s]+@[^@!\s]+![A-Za-z][A-Za-z0-9._-]*$`:            "must be a Proxmox API token ID: USER@REALM!TOKENNAME, e.g. berth@pve!deploy",
	`^[^@\s]+@[^@\s]+$`:                                      "must be USER@REALM, e.g. root@pam",
	`^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$`:                 "must be a SHA-256 fingerprint: 32 hex bytes, colons optional",
	`^(no|always|unless-stopped|on-failure(:[0-9]+)?)$`:      "must be no, always, on-failure, on-failure:N or unless-stopped",
	`^[a-zA-Z][a-zA-Z0-9_.-]{0,14}$`:                         "must be an interface name of at most 15 characters, e.g. eth0 or net0",
	`^(dhcp|manual|[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2})$`: "must be dhcp, manual or an IPv4 address with prefix length, e.g. 10.0.3.5/24",
	`^[0-9]{1,3}(\.[0-9]{1,3}){3}$`:                          "must be an IPv4 address, e.g. 10.0.3.1",
	`^(dhcp|auto|manual|[0-9a-fA-F:]+/[0-9]{1,3})$`:          "must be dhcp, auto, manual or an IPv6 address with prefix length",
	`^[0-9a-fA-F:]+$`:                                        "must be an IPv6 address",
	`^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$`:                   "must be a MAC address, e.g. BC:24:11:00:00:01",
	`^[^:]+:/[^:]*(:(ro|rw))?$`:                              "must be SOURCE:TARGET or SOURCE:TARGET:ro with an absolute TARGET, e.g. ./data:/data:ro",
	`^/`:                                                     "must be an absolute path",
	`^[0-9]+(:[0-9]+)?$`:                                     "must be UID or UID:GID, e.g. 1000:1000",
	`^[A-Za-z][A-Za-z0-9_.-]*:.+$`:                           "must be a Proxmox volume STORAGE:vztmpl/FILE, e.g. local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
	`^(scsi|virtio|sata|ide|mp)[0-9]{1,2}$`:                  "must be a disk slot such as scsi0, virtio1, sata0, ide2 or mp0",
	`^(ssh-|ecdsa-|sk-)`:                                     "must be an SSH public key line (ssh-ed25519 AAAA..., ssh-rsa ...)",
	`^[a-z0-9_][a-z0-9_.+-]*$`:                               "must be a Proxmox tag: lowercase letters, digits and _ . + -",
	`^[^=]+(=.*)?$`:                                          "must be KEY=VALUE or KEY",
	`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`: "must be a valid host name: labels of letters, digits and '-' separated by dots",
}

var printer = message.NewPrinter(language.English)

// schemaErrors turns the validator's error tree into FieldErrors at the
// YAML positions of the offending values.
//
// It returns the paths of the offending values (an unknown key, a field
// that does not apply, an object missing a required field ...), which the
// loader prunes to run the remaining checks on what is left; ok is false
// when the error cannot be tied to a value.
func schemaErrors(err error, doc any, pos positions, errs *errorList) (bad [][]string, ok bool) {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		if errs != nil {
			errs.add(pos1, "", "schema validation: %v", err)
		}
		return nil, false
	}
	var leaves []*jsonschema.ValidationError
	collectLeaves(ve, doc, &leaves)
	for _, l := range leaves {
		if errs != nil {
			reportLeaf(l, doc, pos, errs)
		}
		loc := l.InstanceLocation
		switch k := l.ErrorKind.(type) {
		case *kind.AdditionalProperties:
			for _, p := range k.Properties {
				bad = append(bad, append(loc[:len(loc):len(loc)], p))
			}
		case *kind.PropertyNames:
			bad = append(bad, append(loc[:len(loc):len(loc)], k.Property))
		default:
			bad = append(bad, loc)
		}
	}
	return bad, true
}

var pos1 = pos{1, 1}

// collectLeaves flattens the error tree. For anyOf/oneOf it keeps only the
// branches whose type fits the value (a map given where a list or map is
// allowed is judged by the map branch); if no branch fits it reports one
// type error listing every accepted type.
func collectLeaves(e *jsonschema.ValidationError, doc any, out *[]*jsonschema.ValidationError) {
	switch k := e.ErrorKind.(type) {
	case *kind.AnyOf, *kind.OneOf:
		if ok, isOneOf := k.(*kind.OneOf); isOneOf && len(ok.Subschemas) > 1 {
			*out = append(*out, e)
			return
		}
		var fitting []*jsonschema.ValidationError
		var want []string
		for _, c := range e.Causes {
			if w, mismatch := typeMismatch(c, e.InstanceLocation, doc); mismatch {
				want = append(want, w...)
				continue
			}
			fitting = append(fitting, c)
		}
		if len(fitting) == 0 {
			*out = append(*out, &jsonschema.ValidationError{InstanceLocation: e.InstanceLocation, ErrorKind: &kind.Type{Got: jsonType(valueAt(doc, e.InstanceLocation)), Want: dedupe(want)}})
			return
		}
		if len(fitting) == 1 && len(want) > 0 {
			// "auto" or an integer: name the other accepted types too.
			var one []*jsonschema.ValidationError
			collectLeaves(fitting[0], doc, &one)
			if len(one) == 1 && len(one[0].InstanceLocation) == len(e.InstanceLocation) {
				var vals []string
				switch c := one[0].ErrorKind.(type) {
				case *kind.Const:
					vals = []string{quoteValue(c.Want)}
				case *kind.Enum:
					for _, w := range c.Want {
						vals = append(vals, quoteValue(w))
					}
				}
				if vals != nil {
					*out = append(*out, &jsonschema.ValidationError{InstanceLocation: e.InstanceLocation, ErrorKind: &kind.Type{Got: jsonType(valueAt(doc, e.InstanceLocation)), Want: append(vals, want...)}})
					return
				}
			}
			*out = append(*out, one...)
			return
		}
		for _, c := range fitting {
			collectLeaves(c, doc, out)
		}
		return
	case *kind.PropertyNames:
		*out = append(*out, e)
		return
	}
	if len(e.Causes) == 0 {
		*out = append(*out, e)
		return
	}
	for _, c := range e.Causes {
		collectLeaves(c, doc, out)
	}
}

// typeMismatch reports whether a failed branch failed because the value at
// loc has the wrong type for it, and which types it wanted.
func typeMismatch(e *jsonschema.ValidationError, loc []string, doc any) ([]string, bool) {
	if len(e.InstanceLocation) == len(loc) {
		switch k := e.ErrorKind.(type) {
		case *kind.Type:
			return k.Want, true
		case *kind.Enum:
			got := jsonType(k.Got)
			var want []string
			for _, w := range k.Want {
				if jsonType(w) == got {
					return nil, false
				}
				want = append(want, quoteValue(w))
			}
			return want, true
		case *kind.Const:
			if jsonType(k.Want) == jsonType(k.Got) {
				return nil, false
			}
			return []string{quoteValue(k.Want)}, true
		}
	}
	if len(e.Causes) == 1 {
		return typeMismatch(e.Causes[0], loc, doc)
	}
	// A $ref or group whose causes all are type mismatches at loc.
	if len(e.Causes) > 1 {
		var want []string
		for _, c := range e.Causes {
			w, ok := typeMismatch(c, loc, doc)
			if !ok {
				return nil, false
			}
			want = append(want, w...)
		}
		return want, true
	}
	return nil, false
}

func reportLeaf(e *jsonschema.ValidationError, doc any, where positions, errs *errorList) {
	tokens := e.InstanceLocation
	loc, _ := where.lookup(tokens)
	at := loc.value
	if at == (pos{}) {
		at = pos1
	}
	secret := isSecretPath(tokens)
	switch k := e.ErrorKind.(type) {
	case *kind.Type:
		got := ""
		if k.Got != "" {
			got = " (got " + article([]string{k.Got})[0] + ")"
		}
		if v, ok := valueAt(doc, tokens).(string); ok && !secret {
			got = fmt.Sprintf(" (got %q)", v)
		}
		if len(k.Want) == 1 && k.Want[0] == "string" && k.Got != "object" && k.Got != "array" {
			if help := patternAt(tokens, doc); help != "" {
				errs.add(at, loc.display, "%s%s", help, got)
				return
			}
			errs.add(at, loc.display, "must be a string%s; quote the value to make it text", got)
			return
		}
		errs.add(at, loc.display, "must be %s%s", orList(article(sortTypes(k.Want))), got)
	case *kind.Enum:
		if len(tokens) == 1 && tokens[0] == "version" {
			errs.add(at, loc.display, "unsupported version %s: this berth reads version 1", quoteValue(k.Got))
			return
		}
		var w []string
		for _, x := range k.Want {
			w = append(w, quoteValue(x))
		}
		got := ""
		if !secret {
			got = " (got " + quoteValue(k.Got) + ")"
		}
		errs.add(at, loc.display, "must be one of %s%s", strings.Join(w, ", "), got)
	case *kind.Const:
		errs.add(at, loc.display, "must be %s", quoteValue(k.Want))
	case *kind.Pattern:
		help, ok := patternHelp[k.Want]
		if !ok {
			help = "must match " + k.Want
		}
		if secret {
			errs.add(at, loc.display, "%s", help)
		} else {
			errs.add(at, loc.display, "%q: %s", k.Got, help)
		}
	case *kind.Required:
		for _, m := range k.Missing {
			errs.add(at, loc.display, "missing required field %q", m)
		}
	case *kind.AdditionalProperties:
		n, _ := getNav()
		var known []string
		if n != nil {
			known = propertyNames(n.at(tokens, doc))
		}
		for _, p := range k.Properties {
			ploc, _ := where.lookup(append(tokens[:len(tokens):len(tokens)], p))
			msg := "unknown field"
			if s := suggest(p, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else if len(tokens) <= 2 {
				msg += " (extension fields must start with x-)"
			}
			errs.add(ploc.key, ploc.display, "%s", msg)
		}
	case *kind.PropertyNames:
		ploc, _ := where.lookup(append(tokens[:len(tokens):len(tokens)], k.Property))
		what := "name"
		if len(tokens) == 1 && tokens[0] == "instances" {
			what = "instance name"
		} else if len(tokens) == 1 && tokens[0] == "providers" {
			what = "provider name"
		}
		errs.add(ploc.key, ploc.display, "invalid %s %q: %s", what, k.Property, patternHelp[`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`])
	case *kind.FalseSchema:
		errs.add(loc.key, loc.display, "%s", notApplicable(tokens, doc))
	case *kind.Minimum:
		errs.add(at, loc.display, "must be at least %s", k.Want.RatString())
	case *kind.Maximum:
		errs.add(at, loc.display, "must be at most %s", k.Want.RatString())
	case *kind.ExclusiveMinimum:
		errs.add(at, loc.display, "must be greater than %s", k.Want.RatString())
	case *kind.MinLength:
		if k.Want == 1 {
			errs.add(at, loc.display, "must not be empty")
		} else {
			errs.add(at, loc.display, "must be at least %d characters", k.Want)
		}
	case *kind.MaxLength:
		errs.add(at, loc.display, "must be at most %d characters", k.Want)
	case *kind.MinItems:
		errs.add(at, loc.display, "must have at least %d item(s)", k.Want)
	case *kind.UniqueItems:
		errs.add(at, loc.display, "items %d and %d are the same; list each once", k.Duplicates[0], k.Duplicates[1])
	case *kind.OneOf:
		errs.add(at, loc.display, "matches more than one accepted form")
	default:
		if secret {
			errs.add(at, loc.display, "invalid value (not shown: it is a secret)")
			return
		}
		errs.add(at, loc.display, "%s", e.ErrorKind.LocalizedString(printer))
	}
}

// notApplicable explains a field used with a backend (or provider type)
// it does not belong to, using the schema's own if/then table.
func notApplicable(tokens []string, doc any) string {
	field := tokens[len(tokens)-1]
	n, _ := getNav()
	if n != nil && len(tokens) == 3 {
		parent := asMap(valueAt(doc, tokens[:2]))
		switch tokens[0] {
		case "instances":
			b, _ := parent["backend"].(string)
			return fmt.Sprintf("%s does not apply to backend %s (only to %s)", field, b, strings.Join(n.applies["instance"][field], ", "))
		case "providers":
			t, _ := parent["type"].(string)
			return fmt.Sprintf("%s does not apply to a provider of type %s (only to %s)", field, t, strings.Join(n.applies["provider"][field], ", "))
		}
	}
	return field + " is not allowed here"
}

// patternAt returns the words for the pattern the schema sets at tokens
// ("not a duration: ..."), if there is one.
func patternAt(tokens []string, doc any) string {
	n, _ := getNav()
	if n == nil {
		return ""
	}
	for _, s := range n.at(tokens, doc) {
		if p, ok := s["pattern"].(string); ok && patternHelp[p] != "" {
			return patternHelp[p]
		}
	}
	return ""
}

var typeOrder = map[string]int{"string": 1, "integer": 2, "number": 3, "boolean": 4, "object": 5, "array": 6, "null": 7}

// sortTypes orders JSON type names from the most to the least usual; quoted
// constants ("auto") come first.
func sortTypes(ts []string) []string {
	out := append([]string{}, ts...)
	sort.SliceStable(out, func(i, j int) bool { return typeOrder[out[i]] < typeOrder[out[j]] })
	return out
}

func valueAt(doc any, tokens []string) any {
	v := doc
	for _, t := range tokens {
		switch c := v.(type) {
		case map[string]any:
			v = c[t]
		case []any:
			var i int
			if _, err := fmt.Sscan(t, &i); err != nil || i < 0 || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}

func jsonType(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case int, int64, uint64:
		return "integer"
	case float64:
		if t == float64(int64(t)) {
			return "integer"
		}
		return "number"
	}
	if s := fmt.Sprint(v); s != "" && strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) < 0 {
		return "integer"
	}
	return "number"
}

func quoteValue(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

var typeWords = map[string]string{
	"string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
	"object": "a mapping", "array": "a list", "null": "empty",
}

func article(ts []string) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		if w, ok := typeWords[t]; ok {
			out = append(out, w)
		} else {
			out = append(out, t)
		}
	}
	return out
}

func orList(ws []string) string {
	ws = dedupe(ws)
	switch len(ws) {
	case 0:
		return "something else"
	case 1:
		return ws[0]
	}
	return strings.Join(ws[:len(ws)-1], ", ") + " or " + ws[len(ws)-1]
}

func dedupe(ws []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, w := range ws {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// suggest returns the known name closest to s, if it is close enough to
// be a typo.
func suggest(s string, known []string) string {
	best, bestD := "", 1<<30
	for _, k := range known {
		if d := editDistance(s, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best != "" && bestD <= max(1, len(s)/3) {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
