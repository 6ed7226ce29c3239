package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/schema"
	"gopkg.in/yaml.v3"
)

// LoadOptions are the inputs of Load besides the file itself.
type LoadOptions struct {
	// ProjectName overrides the stack name (-p/--project-name, which the CLI
	// also fills from BERTH_PROJECT_NAME).
	ProjectName string
	// EnvFile is the file of VAR=value lines used for interpolation
	// (--env-file). Empty means .env next to the stack file, if it exists.
	EnvFile string
	// Environ is the process environment for interpolation; nil means
	// os.Environ(). It wins over the env file, as in Compose.
	Environ map[string]string
}

// Candidate stack file names, in the order FindFile tries them.
var FileNames = []string{"berth.yaml", "berth.yml"}

// FindFile returns the stack file in dir: berth.yaml, then berth.yml.
func FindFile(dir string) (string, error) {
	for _, name := range FileNames {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no stack file in %s: looked for %s (use -f FILE)", dir, strings.Join(FileNames, ", "))
}

// Load reads, interpolates, validates and normalises the stack file at
// path. It returns every problem at once: an errors.Join of *FieldError,
// each printed FILE:LINE:COL: PATH: MESSAGE. Nothing outside the file, its
// env file and the environment is read, and nothing is contacted.
func Load(path string, opts LoadOptions) (*Stack, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read stack file: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("read stack file: %w", err)
	}
	env := opts.Environ
	if env == nil {
		env = environMap(os.Environ())
	}
	errs := &errorList{file: path}
	dir := filepath.Dir(abs)
	envFile, explicit := opts.EnvFile, opts.EnvFile != ""
	if !explicit {
		// Named like the stack file (relative if it was) for messages.
		envFile = filepath.Join(filepath.Dir(path), ".env")
	}
	var dotenv map[string]string
	if b, err := os.ReadFile(envFile); err == nil {
		dotenv = parseDotEnv(envFile, b, mapLookup(env), errs)
	} else if explicit || !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read env file: %w", err)
	}
	return load(path, dir, data, opts.ProjectName, env, dotenv, errs)
}

func environMap(kvs []string) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func mapLookup(m map[string]string) lookupFunc {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// load is Load after the files are read; the fuzz target calls it directly.
func load(file, dir string, data []byte, projectName string, env, dotenv map[string]string, errs *errorList) (*Stack, error) {
	lookup := func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		v, ok := dotenv[k]
		return v, ok
	}
	var warnings []string
	seenWarn := map[string]bool{}
	warn := func(s string) {
		if !seenWarn[s] {
			seenWarn[s] = true
			warnings = append(warnings, s)
		}
	}

	root, ok := parseYAML(data, errs)
	if !ok {
		return nil, errs.err()
	}
	changed := interpolateTree(root, lookup, errs, warn)
	pos := positions{}
	b := &treeBuilder{pos: pos, changed: changed, errs: errs}
	pos.set(nil, location{value: nodePos(root.Content[0])})
	generic := b.build(root, nil, "", 0)
	if b.tooLarge {
		return nil, errs.err()
	}
	nav, err := getNav()
	if err != nil {
		return nil, err
	}
	generic = nav.castInterpolated(generic, nav.resolve(nav.root, nil, 0))

	validator, err := schema.Validator()
	if err != nil {
		return nil, err
	}
	var pr pruned
	// Values whose interpolation failed are already reported: leave them
	// out, as values that fail the schema are, and check the rest.
	if len(b.failed) > 0 && !pr.cut(generic, b.failed) {
		return nil, errs.err()
	}
	if err := validator.Validate(generic); err != nil {
		// Report the schema errors, then cut the offending values out and
		// run the remaining checks on the rest, so one run shows every
		// problem. Errors caused only by the cuts are not reported.
		bad, ok := schemaErrors(err, generic, pos, errs)
		for round := 0; ok; round++ {
			if ok = pr.cut(generic, bad); !ok || round == 5 {
				break
			}
			err := validator.Validate(generic)
			if err == nil {
				break
			}
			bad, ok = schemaErrors(err, generic, pos, nil)
		}
		if !ok {
			return nil, errs.err()
		}
	}

	doc := generic.(map[string]any)
	n := &normalizer{pos: pos, errs: errs, lookup: lookup, dir: dir, pruned: &pr}
	n.document(doc)
	st, err := decodeStack(doc)
	if err != nil {
		errs.add(pos1, "", "internal error: the stack passed the schema but does not decode: %v", err)
		return nil, errs.err()
	}
	st.File, st.Dir, st.Warnings = file, dir, warnings
	for name, p := range st.Providers {
		p.Name = name
	}
	for name, in := range st.Instances {
		in.Name = name
	}
	c := &checker{st: st, pos: pos, errs: errs, pruned: &pr}
	c.stackName(projectName, lookup)
	c.run()
	if !errs.empty() {
		return nil, errs.err()
	}
	return st, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML reads exactly one YAML document whose top level is a mapping.
func parseYAML(data []byte, errs *errorList) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			errs.add(pos1, "", "the file is empty: a stack file needs at least an instances: mapping")
			return nil, false
		}
		msg, line := err.Error(), 1
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		} else {
			msg = strings.TrimPrefix(msg, "yaml: ")
		}
		errs.add(pos{max(line, firstBadLine(data)), 1}, "", "invalid YAML: %s", msg)
		return nil, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		errs.add(nodePos(&extra), "", "a stack file holds one YAML document; found a second one (---)")
		return nil, false
	} else if !errors.Is(err, io.EOF) {
		errs.add(pos1, "", "invalid YAML after the first document: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, false
	}
	if len(root.Content) == 0 {
		errs.add(pos1, "", "the file is empty: a stack file needs at least an instances: mapping")
		return nil, false
	}
	top := resolveAlias(root.Content[0])
	if top.Kind != yaml.MappingNode {
		if top.Kind == yaml.ScalarNode && top.ShortTag() == "!!null" {
			errs.add(nodePos(top), "", "the file is empty: a stack file needs at least an instances: mapping")
		} else {
			errs.add(nodePos(top), "", "the top level must be a mapping with version, name, providers and instances")
		}
		return nil, false
	}
	return &root, true
}

// decodeStack decodes the normalised document into the typed structs,
// refusing any field the structs do not know (a schema/struct mismatch).
func decodeStack(doc map[string]any) (*Stack, error) {
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var st Stack
	if err := dec.Decode(&st); err != nil {
		return nil, err
	}
	if st.Instances == nil {
		st.Instances = map[string]*Instance{}
	}
	return &st, nil
}

// firstBadLine finds the line a YAML syntax error is on: yaml.v3 often
// names the line where the enclosing block starts, so look for the
// shortest prefix of whole lines that fails to parse (binary search: a
// prefix of a good prefix is good).
func firstBadLine(data []byte) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	bad := func(n int) bool {
		var node yaml.Node
		return yaml.Unmarshal(bytes.Join(lines[:n], nil), &node) != nil
	}
	if !bad(len(lines)) {
		return 0
	}
	lo, hi := 0, len(lines) // bad(hi) holds; find the smallest such hi
	for lo+1 < hi {
		mid := (lo + hi) / 2
		if bad(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// pruned records what the loader cut out of a document that failed the
// schema, so the semantic checks neither trip over it nor blame others.
type pruned struct {
	instances map[string]bool // whole instances cut (their name is still valid as a target)
	providers map[string]bool
	name      bool
	touched   map[string]bool // pathKey of every cut value and of its ancestors
}

// mark records that the value at tokens was cut.
func (p *pruned) mark(tokens []string) {
	if p.touched == nil {
		p.touched = map[string]bool{}
	}
	for n := len(tokens); n >= 0; n-- {
		p.touched[pathKey(tokens[:n])] = true
	}
}

// under reports whether the value at tokens, or anything inside it, was cut.
func (p *pruned) under(tokens ...string) bool { return p.touched[pathKey(tokens)] }

// cut deletes the values at paths from doc. A value inside a list takes
// the whole list with it (list positions must not shift); a broken
// instance or provider goes whole. It returns false when the document
// itself or a whole top-level section is broken.
func (p *pruned) cut(doc any, paths [][]string) bool {
	root := asMap(doc)
	if root == nil {
		return false
	}
	for _, path := range paths {
		// Cut at the first list.
		v := any(root)
		for i, t := range path {
			if _, isList := v.([]any); isList {
				path = path[:i]
				break
			}
			v = asMap(v)[t]
		}
		switch {
		case len(path) == 0:
			return false
		case len(path) == 1 && (path[0] == "instances" || path[0] == "providers"):
			return false
		case len(path) == 2 && path[0] == "instances":
			if p.instances == nil {
				p.instances = map[string]bool{}
			}
			p.instances[path[1]] = true
		case len(path) == 2 && path[0] == "providers":
			if p.providers == nil {
				p.providers = map[string]bool{}
			}
			p.providers[path[1]] = true
		case len(path) == 1 && path[0] == "name":
			p.name = true
		}
		parent := asMap(valueAt(root, path[:len(path)-1]))
		if parent == nil {
			return false
		}
		delete(parent, path[len(path)-1])
		p.mark(path)
	}
	return true
}
