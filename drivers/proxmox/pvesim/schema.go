package pvesim

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// apischema.json is derived from the PVE 9.1 API schema subset (pve-docs
// api-viewer/apidata.js @ e5010dce) by ./internal/gen; see docs/pvesim.md.
//
//go:generate go run ./internal/gen -in $PVE_API_SUBSET -out apischema.json
//go:embed apischema.json
var apiSchemaJSON []byte

// Param is one API parameter (or property-string sub-key) as the PVE schema
// declares it.
type Param struct {
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Optional   bool              `json:"optional,omitempty"`
	Enum       []string          `json:"enum,omitempty"`
	Pattern    string            `json:"pattern,omitempty"`
	Format     string            `json:"format,omitempty"`
	Props      map[string]*Param `json:"props,omitempty"`
	Min        *float64          `json:"min,omitempty"`
	Max        *float64          `json:"max,omitempty"`
	MaxLength  *int              `json:"maxLength,omitempty"`
	MinLength  *int              `json:"minLength,omitempty"`
	Default    any               `json:"default,omitempty"`
	DefaultKey bool              `json:"defaultKey,omitempty"`
	Alias      string            `json:"alias,omitempty"`
	KeyAlias   string            `json:"keyAlias,omitempty"`
	Requires   string            `json:"requires,omitempty"`

	re     *regexp.Regexp
	reOnce sync.Once
}

// Endpoint is one method+path of the API subset the simulator serves.
type Endpoint struct {
	Method     string   `json:"method"`
	Path       string   `json:"path"`
	Name       string   `json:"name"`
	Protected  bool     `json:"protected,omitempty"`
	ProxyTo    string   `json:"proxyto,omitempty"`
	AllowToken bool     `json:"allowtoken,omitempty"`
	Returns    string   `json:"returns"`
	Check      []any    `json:"check,omitempty"` // PVE permission check expression
	Params     []*Param `json:"params"`

	segs    []string
	byName  map[string]*Param
	indexed map[string]*Param // "net" for "net[n]"
}

// Schema is the embedded parameter table.
type Schema struct {
	Source    map[string]string `json:"source"`
	Endpoints []*Endpoint       `json:"endpoints"`
}

var (
	schemaOnce sync.Once
	schema     *Schema
)

// APISchema returns the embedded parameter table (parsed once).
func APISchema() *Schema {
	schemaOnce.Do(func() {
		var s Schema
		if err := json.Unmarshal(apiSchemaJSON, &s); err != nil {
			panic("pvesim: embedded apischema.json: " + err.Error())
		}
		for _, ep := range s.Endpoints {
			ep.segs = strings.Split(strings.Trim(ep.Path, "/"), "/")
			ep.byName = map[string]*Param{}
			ep.indexed = map[string]*Param{}
			for _, p := range ep.Params {
				if strings.HasSuffix(p.Name, "[n]") {
					ep.indexed[strings.TrimSuffix(p.Name, "[n]")] = p
				} else {
					ep.byName[p.Name] = p
				}
			}
		}
		schema = &s
	})
	return schema
}

// indexLimits are the highest index PVE accepts for each indexed option
// (qemu-server MAX_NETS etc., pve-container MAX_MOUNT_POINTS...).
var indexLimits = map[string]int{
	"net": 31, "ipconfig": 31, "ide": 3, "sata": 5, "scsi": 30, "virtio": 15,
	"mp": 255, "unused": 255, "dev": 255, "hostpci": 15, "usb": 13,
	"serial": 3, "parallel": 2, "numa": 7, "virtiofs": 9,
}

var indexedRE = regexp.MustCompile(`^([a-z]+)(\d+)$`)

// Lookup finds the schema entry for a concrete parameter name such as
// "net0" (matched against "net[n]").
func (ep *Endpoint) Lookup(name string) *Param {
	if p, ok := ep.byName[name]; ok {
		return p
	}
	if m := indexedRE.FindStringSubmatch(name); m != nil {
		if p, ok := ep.indexed[m[1]]; ok {
			n, _ := strconv.Atoi(m[2])
			max, ok := indexLimits[m[1]]
			if !ok {
				max = 255
			}
			if n <= max && (m[2] == "0" || m[2][0] != '0') {
				return p
			}
		}
	}
	return nil
}

// match reports whether the endpoint's path template matches the
// relative path segments, filling uri parameters.
func (ep *Endpoint) match(segs []string) (map[string]string, bool) {
	// A volume id may contain '/' ("local:iso/x.iso"): {volume} as the
	// last component takes the rest of the path.
	if n := len(ep.segs); n > 0 && ep.segs[n-1] == "{volume}" && len(segs) > n {
		segs = append(segs[:n-1:n-1], strings.Join(segs[n-1:], "/"))
	}
	if len(segs) != len(ep.segs) {
		return nil, false
	}
	var uri map[string]string
	for i, t := range ep.segs {
		if strings.HasPrefix(t, "{") {
			if segs[i] == "" {
				return nil, false
			}
			if uri == nil {
				uri = map[string]string{}
			}
			uri[strings.Trim(t, "{}")] = segs[i]
			continue
		}
		if t != segs[i] {
			return nil, false
		}
	}
	return uri, true
}

// value is one request parameter as received: JSON booleans are kept apart
// because PVE type-checks them differently from the strings "1"/"0".
type value struct {
	s      string
	isBool bool
	isRef  string // non-scalar JSON value: Perl reference type (ARRAY, HASH)
}

// Exact validation messages of pve-common JSONSchema.pm @ f665029e (9.2.1),
// copied from SEMANTICS.md (project reference data).
const (
	msgNotInSchema = "property is not defined in schema and the schema does not allow additional properties"
	msgMissing     = "property is missing and it is not optional"
	msgNoRegex     = "value does not match the regex pattern"
	msgParamFailed = "Parameter verification failed."
)

// validate checks params against the endpoint and returns PVE's errors map
// (nil when valid). params holds already-merged uri+query+body values.
func (ep *Endpoint) validate(params map[string]value) map[string]string {
	errs := map[string]string{}
	for name, v := range params {
		p := ep.Lookup(name)
		if p == nil {
			errs[name] = msgNotInSchema
			continue
		}
		checkProp(errs, name, p, v, false)
	}
	for _, p := range ep.Params {
		if p.Optional || strings.HasSuffix(p.Name, "[n]") {
			continue
		}
		if _, ok := params[p.Name]; !ok {
			errs[p.Name] = msgMissing
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

var (
	intRE = regexp.MustCompile(`^-?\d+$`)
	numRE = regexp.MustCompile(`^-?\d+(\.\d+)?([eE][+-]?\d+)?$|^-?\.\d+$`)
)

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func addErr(errs map[string]string, path, msg string) {
	if old, ok := errs[path]; ok {
		errs[path] = old + `\n` + msg // sic: PVE joins with a literal backslash-n
		return
	}
	errs[path] = msg
}

// checkProp mirrors JSONSchema.pm check_prop: type, format, pattern,
// length, range, enum, stopping at the first failure.
func checkProp(errs map[string]string, path string, p *Param, v value, sub bool) {
	if v.isRef != "" {
		addErr(errs, path, fmt.Sprintf("type check ('%s') failed - got %s", p.Type, v.isRef))
		return
	}
	if v.isBool && p.Type != "boolean" {
		addErr(errs, path, fmt.Sprintf("type check ('%s') failed - got JSON::PP::Boolean", p.Type))
		return
	}
	s := v.s
	switch p.Type {
	case "boolean":
		if !v.isBool {
			if sub {
				if _, ok := parseBoolean(s); !ok {
					addErr(errs, path, fmt.Sprintf("type check ('boolean') failed - got '%s'", s))
					return
				}
			} else if s != "1" && s != "0" {
				addErr(errs, path, fmt.Sprintf("type check ('boolean') failed - got '%s'", s))
				return
			}
		}
	case "integer":
		if !intRE.MatchString(s) {
			addErr(errs, path, fmt.Sprintf("type check ('integer') failed - got '%s'", s))
			return
		}
	case "number":
		if !numRE.MatchString(s) {
			addErr(errs, path, fmt.Sprintf("type check ('number') failed - got '%s'", s))
			return
		}
	}
	if p.Props != nil {
		if _, perr := parsePropertyString(p.Props, s, path); perr != "" {
			addErr(errs, path, "invalid format - "+perr)
			return
		}
	} else if p.Format != "" {
		if ferr := checkFormat(p.Format, s); ferr != "" {
			addErr(errs, path, "invalid format - "+ferr+"\n")
			return
		}
	}
	if re := p.regexp(); re != nil && !re.MatchString(s) {
		addErr(errs, path, msgNoRegex)
		return
	}
	if p.MaxLength != nil && len(s) > *p.MaxLength {
		addErr(errs, path, fmt.Sprintf("value may only be %d characters long", *p.MaxLength))
		return
	}
	if p.MinLength != nil && len(s) < *p.MinLength {
		addErr(errs, path, fmt.Sprintf("value must be at least %d characters long", *p.MinLength))
		return
	}
	if (p.Type == "integer" || p.Type == "number") && numRE.MatchString(s) {
		f, _ := strconv.ParseFloat(s, 64)
		if p.Min != nil && f < *p.Min {
			addErr(errs, path, "value must have a minimum value of "+fmtNum(*p.Min))
			return
		}
		if p.Max != nil && f > *p.Max {
			addErr(errs, path, "value must have a maximum value of "+fmtNum(*p.Max))
			return
		}
	}
	if len(p.Enum) > 0 {
		for _, e := range p.Enum {
			if e == s {
				return
			}
		}
		addErr(errs, path, fmt.Sprintf("value '%s' does not have a value in the enumeration '%s'", s, strings.Join(p.Enum, ", ")))
	}
}

// regexp compiles the Perl pattern once; patterns Go's RE2 cannot express
// are skipped (documented in docs/pvesim.md).
func (p *Param) regexp() *regexp.Regexp {
	if p.Pattern == "" {
		return nil
	}
	p.reOnce.Do(func() {
		pat := strings.ReplaceAll(p.Pattern, "(?^:", "(?:")
		pat = strings.ReplaceAll(pat, `\0`, `\x00`)
		re, err := regexp.Compile(`^(?:` + pat + `)$`)
		if err == nil {
			p.re = re
		}
	})
	return p.re
}

func parseBoolean(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on":
		return true, true
	case "0", "false", "no", "off":
		return false, true
	}
	return false, false
}

// parsePropertyString mirrors JSONSchema.pm parse_property_string: it
// returns the parsed keys (aliases resolved) or PVE's error text.
func parsePropertyString(format map[string]*Param, data, path string) (map[string]string, string) {
	res := map[string]string{}
	defaultKey := ""
	for k, p := range format {
		if p.DefaultKey {
			defaultKey = k
		}
	}
	usedDefault := false
	for _, part := range strings.Split(data, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		if i := strings.IndexByte(part, '='); i > 0 && i < len(part)-1 {
			k, v := part[:i], part[i+1:]
			if _, dup := res[k]; dup {
				return nil, "duplicate key in comma-separated list property: " + k + "\n"
			}
			sch := format[k]
			if sch != nil && sch.Alias != "" {
				if sch.KeyAlias != "" {
					if _, dup := res[sch.KeyAlias]; dup {
						return nil, "key alias '" + sch.KeyAlias + "' is already defined\n"
					}
					res[sch.KeyAlias] = k
				}
				k = sch.Alias
				sch = format[k]
			}
			if sch == nil {
				return nil, "invalid key in comma-separated list property: " + k + "\n"
			}
			if sch.Type == "boolean" {
				if b, ok := parseBoolean(v); ok {
					v = "0"
					if b {
						v = "1"
					}
				}
			}
			res[k] = v
		} else if !strings.Contains(part, "=") {
			if defaultKey == "" {
				return nil, "value without key, but schema does not define a default key\n"
			}
			if usedDefault || res[defaultKey] != "" {
				return nil, "duplicate key in comma-separated list property: " + defaultKey + "\n"
			}
			usedDefault = true
			res[defaultKey] = part
		} else {
			return nil, "missing key in comma-separated list property\n"
		}
	}
	errs := map[string]string{}
	for k, v := range res {
		sch := format[k]
		if sch == nil {
			continue
		}
		checkProp(errs, path+"."+k, sch, value{s: v}, true)
	}
	for k, sch := range format {
		if sch.Optional || sch.Alias != "" {
			continue
		}
		if _, ok := res[k]; !ok {
			errs[path+"."+k] = msgMissing
		}
	}
	if len(errs) > 0 {
		keys := slices.Sorted(maps.Keys(errs))
		var b strings.Builder
		b.WriteString("format error\n")
		for _, k := range keys {
			b.WriteString(k + ": " + strings.TrimSuffix(errs[k], "\n") + "\n")
		}
		return nil, b.String()
	}
	return res, ""
}
