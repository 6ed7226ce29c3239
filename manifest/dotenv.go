package manifest

import (
	"fmt"
	"strings"
)

// parseDotEnv reads a Compose-style .env file: KEY=VALUE lines, optional
// `export ` prefix, # comments, blank lines. Unquoted values end at " #";
// 'single quotes' are literal; "double quotes" understand \n \t \" \\ and
// both unquoted and double-quoted values interpolate ${VAR} from lookup and
// from the lines above. A line that is only KEY takes KEY from lookup.
// Errors carry the line number.
func parseDotEnv(file string, data []byte, lookup lookupFunc, errs *errorList) map[string]string {
	vars := map[string]string{}
	chain := func(name string) (string, bool) {
		if v, ok := lookup(name); ok {
			return v, true
		}
		v, ok := vars[name]
		return v, ok
	}
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		bad := func(format string, args ...any) {
			errs.errs = append(errs.errs, &FieldError{File: file, Line: lineNo, Col: 1, Msg: fmt.Sprintf(format, args...)})
		}
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, val, hasEq := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if key == "" || !validEnvName(key) {
			bad("invalid variable name %q: want letters, digits and _, not starting with a digit", key)
			continue
		}
		if !hasEq {
			if v, ok := lookup(key); ok {
				vars[key] = v
			}
			continue
		}
		val = strings.TrimLeft(val, " \t")
		switch {
		case strings.HasPrefix(val, "'"):
			body, ok := quoted(val[1:], '\'', lines, &i)
			if !ok {
				bad("%s: unterminated single-quoted value", key)
				continue
			}
			vars[key] = body
			continue // literal
		case strings.HasPrefix(val, `"`):
			body, ok := quoted(val[1:], '"', lines, &i)
			if !ok {
				bad("%s: unterminated double-quoted value", key)
				continue
			}
			val = unescapeDouble(body)
		default:
			if k := strings.Index(val, " #"); k >= 0 {
				val = val[:k]
			}
			val = strings.TrimSpace(val)
		}
		// Double-quoted and unquoted values interpolate.
		r, err := interpolate(val, chain)
		if err != nil {
			bad("%s: %v", key, err)
			continue
		}
		vars[key] = r.value
	}
	return vars
}

// quoted returns the text up to the closing quote q, continuing onto
// following lines (multi-line values) and advancing *i past them.
func quoted(rest string, q byte, lines []string, i *int) (string, bool) {
	var b strings.Builder
	for {
		for k := 0; k < len(rest); k++ {
			if q == '"' && rest[k] == '\\' && k+1 < len(rest) {
				b.WriteByte(rest[k])
				b.WriteByte(rest[k+1])
				k++
				continue
			}
			if rest[k] == q {
				return b.String(), true
			}
			b.WriteByte(rest[k])
		}
		if *i+1 >= len(lines) {
			return "", false
		}
		*i++
		b.WriteByte('\n')
		rest = lines[*i]
	}
}

func unescapeDouble(s string) string {
	r := strings.NewReplacer(`\n`, "\n", `\t`, "\t", `\r`, "\r", `\"`, `"`, `\\`, `\`, `\$`, `$$`)
	return r.Replace(s)
}

func validEnvName(s string) bool {
	if s == "" || !isNameStart(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}
