package schema

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONIsACopy(t *testing.T) {
	a := JSON()
	a[0] = 'X'
	if JSON()[0] == 'X' {
		t.Fatal("JSON() hands out the embedded bytes; a caller can change the schema")
	}
	var doc map[string]any
	if err := json.Unmarshal(JSON(), &doc); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	if doc["$id"] != ID || !strings.Contains(doc["$schema"].(string), "2020-12") {
		t.Errorf("$id %v / $schema %v", doc["$id"], doc["$schema"])
	}
}

func TestValidator(t *testing.T) {
	v, err := Validator()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		doc   string
		valid bool
	}{
		{`{"instances": {}}`, true},
		{`{"instances": {"web": {"backend": "lxc", "memory": "64M"}}, "x-any": [1]}`, true},
		{`{"instances": {"web": {"backend": "crun", "image": "dir:/r", "vmid": 120}}}`, false},
		{`{"instances": {"web": {"backend": "lxd"}}}`, false},
		{`{"instances": {"Web": {"backend": "lxc"}}}`, false},
		{`{"services": {}, "instances": {}}`, false},
		{`{}`, false},
	}
	for _, tt := range tests {
		var doc any
		if err := json.Unmarshal([]byte(tt.doc), &doc); err != nil {
			t.Fatal(err)
		}
		if err := v.Validate(doc); (err == nil) != tt.valid {
			t.Errorf("%s: valid = %v, want %v (%v)", tt.doc, err == nil, tt.valid, err)
		}
	}
}
