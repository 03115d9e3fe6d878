package samtemplate

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// SAMConfig is a parsed samconfig.toml: a version and tables named
// "<environment>.<command>.parameters" (command "global" applies to all).
//
// The reader covers the flat TOML subset the SAM CLI writes: [dotted.table]
// headers and key = value lines, where a value is a basic or literal string,
// a boolean, a number or a one-line array of those. Anything else is an error,
// never a silent misread. (A TOML module would do, but this file is all the
// project reads; the subset keeps go.mod unchanged.)
type SAMConfig struct {
	Version string
	Tables  map[string]map[string]any
}

// ReadSAMConfig reads and parses a samconfig.toml file.
func ReadSAMConfig(path string) (*SAMConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseSAMConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseSAMConfig parses samconfig.toml content.
func ParseSAMConfig(data []byte) (*SAMConfig, error) {
	c := &SAMConfig{Tables: map[string]map[string]any{}}
	top := map[string]any{}
	cur := top
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(stripComment(sc.Text()))
		if text == "" {
			continue
		}
		if strings.HasPrefix(text, "[") {
			if !strings.HasSuffix(text, "]") || strings.HasPrefix(text, "[[") {
				return nil, fmt.Errorf("samconfig: line %d: unsupported table header %q", line, text)
			}
			name := strings.TrimSpace(text[1 : len(text)-1])
			if name == "" {
				return nil, fmt.Errorf("samconfig: line %d: empty table name", line)
			}
			if _, dup := c.Tables[name]; dup {
				return nil, fmt.Errorf("samconfig: line %d: table [%s] defined twice", line, name)
			}
			cur = map[string]any{}
			c.Tables[name] = cur
			continue
		}
		key, raw, ok := strings.Cut(text, "=")
		if !ok {
			return nil, fmt.Errorf("samconfig: line %d: want key = value, got %q", line, text)
		}
		key = strings.TrimSpace(key)
		if key == "" || strings.ContainsAny(key, " \t\"'.") {
			return nil, fmt.Errorf("samconfig: line %d: unsupported key %q", line, key)
		}
		v, err := parseTOMLValue(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("samconfig: line %d: %s: %w", line, key, err)
		}
		if _, dup := cur[key]; dup {
			return nil, fmt.Errorf("samconfig: line %d: key %s set twice", line, key)
		}
		cur[key] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	switch v := top["version"].(type) {
	case float64:
		c.Version = strconv.FormatFloat(v, 'f', -1, 64)
	case string:
		c.Version = v
	case nil:
		return nil, fmt.Errorf("samconfig: no version")
	default:
		return nil, fmt.Errorf("samconfig: version is %T", v)
	}
	return c, nil
}

// Get returns a parameter of a command in an environment ("default"), looking
// in "<env>.<command>.parameters" first and then "<env>.global.parameters".
func (c *SAMConfig) Get(env, command, key string) (any, bool) {
	for _, table := range []string{env + "." + command + ".parameters", env + ".global.parameters"} {
		if v, ok := c.Tables[table][key]; ok {
			return v, true
		}
	}
	return nil, false
}

// stripComment removes a # comment that is outside quotes.
func stripComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case quote != 0:
			if ch == '\\' && quote == '"' {
				i++
			} else if ch == quote {
				quote = 0
			}
		case ch == '"' || ch == '\'':
			quote = ch
		case ch == '#':
			return s[:i]
		}
	}
	return s
}

func parseTOMLValue(s string) (any, error) {
	switch {
	case s == "":
		return nil, fmt.Errorf("missing value")
	case s == "true":
		return true, nil
	case s == "false":
		return false, nil
	case strings.HasPrefix(s, `"""`) || strings.HasPrefix(s, "'''"):
		return nil, fmt.Errorf("multi-line strings are not supported")
	case s[0] == '"':
		v, err := strconv.Unquote(s)
		if err != nil {
			return nil, fmt.Errorf("bad string %s", s)
		}
		return v, nil
	case s[0] == '\'':
		if len(s) < 2 || s[len(s)-1] != '\'' || strings.Contains(s[1:len(s)-1], "'") {
			return nil, fmt.Errorf("bad literal string %s", s)
		}
		return s[1 : len(s)-1], nil
	case s[0] == '[':
		if s[len(s)-1] != ']' {
			return nil, fmt.Errorf("arrays must be on one line")
		}
		var out []any
		for _, e := range splitArray(s[1 : len(s)-1]) {
			e = strings.TrimSpace(e)
			if e == "" {
				continue // trailing comma
			}
			v, err := parseTOMLValue(e)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	clean := strings.ReplaceAll(s, "_", "")
	if n, err := strconv.ParseInt(clean, 10, 64); err == nil {
		return n, nil
	}
	if f, err := strconv.ParseFloat(clean, 64); err == nil {
		return f, nil
	}
	return nil, fmt.Errorf("unsupported value %s", s)
}

// splitArray splits the inside of a one-line array at commas outside quotes.
func splitArray(s string) []string {
	var parts []string
	var quote byte
	start := 0
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case quote != 0:
			if ch == '\\' && quote == '"' {
				i++
			} else if ch == quote {
				quote = 0
			}
		case ch == '"' || ch == '\'':
			quote = ch
		case ch == ',':
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}
