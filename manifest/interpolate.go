package manifest

import (
	"fmt"
	"strings"
)

// lookupFunc returns a variable's value and whether it is set.
type lookupFunc func(name string) (string, bool)

// interpolation is the result of expanding one string.
type interpolation struct {
	value   string
	unset   []string // variables referenced without a default that are not set
	changed bool     // the string held a $ (so its YAML type must be re-derived)
}

// Interpolate expands variables in s the way Compose does: $VAR, ${VAR},
// ${VAR:-default} (unset or empty), ${VAR-default} (unset), ${VAR:?message}
// and ${VAR?message} (error), ${VAR:+other} and ${VAR+other} (replacement
// when set), and $$ for a literal $. Defaults and messages may themselves
// hold variables. An unset variable without a default expands to "".
func Interpolate(s string, lookup func(string) (string, bool)) (string, error) {
	r, err := interpolate(s, lookup)
	return r.value, err
}

func interpolate(s string, lookup lookupFunc) (interpolation, error) {
	if !strings.Contains(s, "$") {
		return interpolation{value: s}, nil
	}
	res := interpolation{changed: true}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(s) {
			return res, fmt.Errorf("invalid interpolation %q: a $ at the end must be written $$", s)
		}
		switch n := s[i+1]; {
		case n == '$':
			b.WriteByte('$')
			i += 2
		case n == '{':
			end := matchBrace(s, i+2)
			if end < 0 {
				return res, fmt.Errorf("invalid interpolation %q: missing closing }", s)
			}
			v, unset, err := expandBraced(s[i+2:end], lookup)
			if err != nil {
				return res, err
			}
			res.unset = append(res.unset, unset...)
			b.WriteString(v)
			i = end + 1
		case isNameStart(n):
			j := i + 1
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			name := s[i+1 : j]
			v, ok := lookup(name)
			if !ok {
				res.unset = append(res.unset, name)
			}
			b.WriteString(v)
			i = j
		default:
			return res, fmt.Errorf("invalid interpolation %q: $ must be followed by a name, { or $ (write $$ for a literal $)", s)
		}
	}
	res.value = b.String()
	return res, nil
}

// matchBrace returns the index of the } closing a ${ whose body starts at
// start, counting nested ${ ... } pairs, or -1.
func matchBrace(s string, start int) int {
	depth := 1
	for i := start; i < len(s); i++ {
		switch {
		case s[i] == '$' && i+1 < len(s) && s[i+1] == '$':
			i++
		case s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			depth++
			i++
		case s[i] == '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// expandBraced expands the body of one ${...}.
func expandBraced(body string, lookup lookupFunc) (string, []string, error) {
	j := 0
	for j < len(body) && isNameChar(body[j]) {
		j++
	}
	name := body[:j]
	if name == "" || !isNameStart(name[0]) {
		return "", nil, fmt.Errorf("invalid interpolation \"${%s}\": want ${NAME}, ${NAME:-default}, ${NAME?error} ...", body)
	}
	val, set := lookup(name)
	rest := body[j:]
	if rest == "" {
		if !set {
			return "", []string{name}, nil
		}
		return val, nil, nil
	}
	colon := strings.HasPrefix(rest, ":")
	op := rest
	if colon {
		op = rest[1:]
	}
	if op == "" {
		return "", nil, fmt.Errorf("invalid interpolation \"${%s}\": want ${NAME}, ${NAME:-default}, ${NAME?error} ...", body)
	}
	word := op[1:]
	present := set && (!colon || val != "")
	expandWord := func() (string, []string, error) {
		r, err := interpolate(word, lookup)
		return r.value, r.unset, err
	}
	switch op[0] {
	case '-':
		if present {
			return val, nil, nil
		}
		return expandWord()
	case '+':
		if present {
			return expandWord()
		}
		return "", nil, nil
	case '?':
		if present {
			return val, nil, nil
		}
		msg, _, err := expandWord()
		if err != nil {
			return "", nil, err
		}
		if msg == "" {
			msg = "required variable " + name + " is not set"
			if colon && set {
				msg = "required variable " + name + " is empty"
			}
		} else {
			msg = "required variable " + name + " is missing a value: " + msg
		}
		return "", nil, requiredVarError(msg)
	}
	return "", nil, fmt.Errorf("invalid interpolation \"${%s}\": unknown operator %q after %s (want :-, -, :?, ?, :+ or +)", body, rest[:min(len(rest), 2)], name)
}

// requiredVarError is the ${VAR?message} failure.
type requiredVarError string

func (e requiredVarError) Error() string { return string(e) }

func isNameStart(c byte) bool { return c == '_' || (c|0x20) >= 'a' && (c|0x20) <= 'z' }
func isNameChar(c byte) bool  { return isNameStart(c) || c >= '0' && c <= '9' }
