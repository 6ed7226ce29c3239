package planner

import (
	"bytes"
	"encoding/json"
	"sort"
)

// This file canonicalises JSON at the byte level (object keys sorted at
// every level, no insignificant space) without decoding into Go values:
// planning 1,000 instances hashes 1,000 specs, and a reflective
// decode/encode round trip per spec was most of the planning time.

// member is one "key":value pair of a compact JSON object; key is the
// decoded key, raw the quoted key as written.
type member struct {
	key      string
	raw, val []byte
}

// compactJSON strips insignificant space; invalid JSON yields nil.
func compactJSON(v []byte) []byte {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return nil
	}
	return b.Bytes()
}

// skipValue returns the index just past the compact JSON value starting
// at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	default:
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']':
				return i
			}
		}
		return len(b)
	}
}

// skipString returns the index just past the JSON string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// objectMembers splits a compact JSON object into its members, in the
// order written. ok is false when b is not a well-formed object.
func objectMembers(b []byte) (ms []member, ok bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, false
	}
	ms = make([]member, 0, 8)
	i := 1
	for i < len(b)-1 {
		if b[i] != '"' {
			return nil, false
		}
		end := skipString(b, i)
		raw := b[i:end]
		key := string(raw[1 : len(raw)-1])
		if bytes.IndexByte(raw, '\\') >= 0 {
			// Escapes are written one way (encoding/json's) so equal
			// keys compare equal.
			if json.Unmarshal(raw, &key) != nil {
				return nil, false
			}
			raw, _ = json.Marshal(key)
		}
		if end >= len(b) || b[end] != ':' {
			return nil, false
		}
		vs := end + 1
		ve := skipValue(b, vs)
		ms = append(ms, member{key: key, raw: raw, val: b[vs:ve]})
		i = ve
		if i < len(b)-1 {
			if b[i] != ',' {
				return nil, false
			}
			i++
		}
	}
	return ms, true
}

// appendObject appends the members, in their order, as one compact JSON
// object.
func appendObject(b []byte, ms []member) []byte {
	b = append(b, '{')
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, m.raw...)
		b = append(b, ':')
		b = append(b, m.val...)
	}
	return append(b, '}')
}

// canonicalCompact sorts object keys at every level of a compact JSON
// value. Values without objects are returned as they are.
func canonicalCompact(v []byte) []byte {
	if len(v) == 0 || bytes.IndexByte(v, '{') < 0 {
		return v
	}
	switch v[0] {
	case '{':
		ms, ok := objectMembers(v)
		if !ok {
			return v
		}
		for i := range ms {
			ms[i].val = canonicalCompact(ms[i].val)
		}
		sortMembers(ms)
		return appendObject(make([]byte, 0, len(v)), ms)
	case '[':
		out := make([]byte, 0, len(v))
		out = append(out, '[')
		for i := 1; i < len(v)-1; {
			e := skipValue(v, i)
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(out, canonicalCompact(v[i:e])...)
			i = e
			if i < len(v)-1 && v[i] == ',' {
				i++
			}
		}
		return append(out, ']')
	}
	return v
}

// sortMembers sorts members by key; already sorted input (maps encoded by
// encoding/json) costs one pass.
func sortMembers(ms []member) {
	for i := 1; i < len(ms); i++ {
		if ms[i].key < ms[i-1].key {
			sort.SliceStable(ms, func(i, j int) bool { return ms[i].key < ms[j].key })
			return
		}
	}
}
