package samtemplate

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"

	"github.com/pelletier/go-toml/v2"
)

// SAMConfig is a parsed samconfig.toml: a version and tables named
// "<environment>.<command>.<section>" (SAM CLI uses the section "parameters";
// the command "global" applies to every command).
//
// The file is decoded by github.com/pelletier/go-toml/v2 (TOML 1.0), so every
// valid TOML file reads as SAM CLI reads it; this type only checks the shape
// SAM CLI expects: a version, and tables three levels deep.
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

// ParseSAMConfig parses samconfig.toml content. A TOML syntax error names its
// line and column; a value where SAM CLI expects a table is an error too.
func ParseSAMConfig(data []byte) (*SAMConfig, error) {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("samconfig: line %d, column %d: %w", row, col, err)
		}
		return nil, fmt.Errorf("samconfig: %w", err)
	}
	c := &SAMConfig{Tables: map[string]map[string]any{}}
	switch v := doc["version"].(type) {
	case float64:
		c.Version = strconv.FormatFloat(v, 'f', -1, 64)
	case int64:
		c.Version = strconv.FormatInt(v, 10)
	case string:
		c.Version = v
	case nil:
		return nil, errors.New("samconfig: no version")
	default:
		return nil, fmt.Errorf("samconfig: version is a %T", v)
	}
	for _, env := range sortedKeys(doc) {
		if env == "version" {
			continue
		}
		commands, ok := doc[env].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("samconfig: %s is a %T, want a table of commands ([%s.<command>.parameters])", env, doc[env], env)
		}
		for _, cmd := range sortedKeys(commands) {
			sections, ok := commands[cmd].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("samconfig: %s.%s is a %T, want a table ([%s.%s.parameters])", env, cmd, commands[cmd], env, cmd)
			}
			for _, sec := range sortedKeys(sections) {
				params, ok := sections[sec].(map[string]any)
				if !ok {
					return nil, fmt.Errorf("samconfig: %s.%s.%s is a %T, want a table", env, cmd, sec, sections[sec])
				}
				c.Tables[env+"."+cmd+"."+sec] = params
			}
		}
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

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
