package planner

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestCanonicalValue checks the byte-level canonicaliser against
// encoding/json's own canonical form (decode, re-encode with sorted keys).
func TestCanonicalValue(t *testing.T) {
	for _, in := range []string{
		`"256M"`, `2.5`, `true`, `null`, `[]`, `{}`,
		`{"b":1,"a":2}`,
		` { "b" : [ {"z":1,"y":"}{"} , 3 ] , "a" : {"d":{"f":1,"e":2}} } `,
		`[{"type":"veth","bridge":"br0"},{"name":"eth1","ip":"dhcp"}]`,
		`{"k\"q":1,"a{":2,"\u00e9":3,"e":4}`,
		`{"s":"a\\\"b,c]","n":[1,[2,{"y":1,"x":0}]]}`,
	} {
		d := json.NewDecoder(bytes.NewReader([]byte(in)))
		d.UseNumber()
		var x any
		if err := d.Decode(&x); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(x); err != nil {
			t.Fatal(err)
		}
		got := canonicalValue(json.RawMessage(in))
		if string(got) != string(bytes.TrimSpace(want.Bytes())) {
			t.Errorf("canonicalValue(%s)\n got %s\nwant %s", in, got, want.Bytes())
		}
	}
}
