// Package schema holds the JSON Schema (draft 2020-12) of the berth stack
// file. It is the one source of truth for the file's structure: the loader
// validates against it, `berth schema` prints it, and editors use it through
// its $id (see README.md).
package schema

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed stack.schema.json
var stackSchema []byte

// ID is the schema's $id, the URL editors fetch it from.
const ID = "https://raw.githubusercontent.com/berth-dev/berth/main/schema/stack.schema.json"

// JSON returns the schema document. The slice is a copy the caller may keep.
func JSON() []byte { return bytes.Clone(stackSchema) }

var (
	compileOnce sync.Once
	compiled    *jsonschema.Schema
	compileErr  error
)

// Validator returns the compiled schema. It is compiled once, from the
// embedded document only (nothing is fetched: the 2020-12 metaschema ships
// with the library).
func Validator() (*jsonschema.Schema, error) {
	compileOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(stackSchema))
		if err != nil {
			compileErr = fmt.Errorf("schema: parse: %w", err)
			return
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		if err := c.AddResource(ID, doc); err != nil {
			compileErr = fmt.Errorf("schema: add: %w", err)
			return
		}
		compiled, compileErr = c.Compile(ID)
		if compileErr != nil {
			compileErr = fmt.Errorf("schema: compile: %w", compileErr)
		}
	})
	return compiled, compileErr
}

// Document returns the schema parsed into generic JSON values (maps, slices,
// json.Number ...), for code that reads the schema itself, such as the
// loader's type casts of interpolated values and its per-backend field table.
func Document() (map[string]any, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(stackSchema))
	if err != nil {
		return nil, fmt.Errorf("schema: parse: %w", err)
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("schema: top level is %T, want an object", doc)
	}
	return m, nil
}
