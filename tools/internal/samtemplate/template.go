package samtemplate

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Intrinsic is a CloudFormation intrinsic function call, such as !Ref Table
// (Name "Ref", Arg "Table") or !GetAtt Table.Arn (Name "Fn::GetAtt", Arg
// []any{"Table", "Arn"}).
type Intrinsic struct {
	Name string
	Arg  any
}

// Template is a parsed SAM template. Values are string, int, float64, bool,
// nil, []any, map[string]any or Intrinsic.
type Template struct {
	Parameters map[string]Parameter
	Globals    map[string]any
	Resources  map[string]Resource
	Outputs    map[string]any
}

// Parameter is an entry of the Parameters section.
type Parameter struct {
	Type string
	// Default is the default value as text ("" with HasDefault false when none).
	Default    string
	HasDefault bool
	// AllowedValues are the values the parameter accepts, as text (nil
	// when the template lists none).
	AllowedValues []string
}

// Resource is an entry of the Resources section.
type Resource struct {
	LogicalID  string
	Type       string
	Properties map[string]any
	Metadata   map[string]any
}

// ParseFile reads and parses a template file.
func ParseFile(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse parses a template.
func Parse(data []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("samtemplate: %w", err)
	}
	v, err := decode(&doc)
	if err != nil {
		return nil, fmt.Errorf("samtemplate: %w", err)
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("samtemplate: the template is not a mapping")
	}
	t := &Template{
		Parameters: map[string]Parameter{},
		Resources:  map[string]Resource{},
		Outputs:    asMap(root["Outputs"]),
		Globals:    asMap(root["Globals"]),
	}
	for name, p := range asMap(root["Parameters"]) {
		pm := asMap(p)
		param := Parameter{Type: asString(pm["Type"])}
		for _, v := range asSlice(pm["AllowedValues"]) {
			param.AllowedValues = append(param.AllowedValues, scalarText(v))
		}
		if d, ok := pm["Default"]; ok {
			param.Default, param.HasDefault = scalarText(d), true
		}
		t.Parameters[name] = param
	}
	for id, r := range asMap(root["Resources"]) {
		rm := asMap(r)
		typ := asString(rm["Type"])
		if typ == "" {
			return nil, fmt.Errorf("samtemplate: resource %s has no Type", id)
		}
		t.Resources[id] = Resource{LogicalID: id, Type: typ, Properties: asMap(rm["Properties"]), Metadata: asMap(rm["Metadata"])}
	}
	return t, nil
}

// ResourcesOfType returns the resources of one type, sorted by logical id.
func (t *Template) ResourcesOfType(typ string) []Resource {
	var out []Resource
	for _, r := range t.Resources {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LogicalID < out[j].LogicalID })
	return out
}

var shortTags = map[string]string{"!Ref": "Ref", "!Condition": "Condition"}

// decode turns a YAML node into plain Go values and Intrinsics.
func decode(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return decode(n.Content[0])
	case yaml.AliasNode:
		return decode(n.Alias)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		name, ok := shortTags[n.Tag]
		if !ok {
			name = "Fn::" + strings.TrimPrefix(n.Tag, "!")
		}
		plain := *n
		plain.Tag = ""
		plain.Style &^= yaml.TaggedStyle
		arg, err := decode(&plain)
		if err != nil {
			return nil, err
		}
		if s, ok := arg.(string); ok && name == "Fn::GetAtt" {
			resource, attr, _ := strings.Cut(s, ".")
			arg = []any{resource, attr}
		}
		return Intrinsic{Name: name, Arg: arg}, nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: YAML merge keys are not supported", k.Line)
			}
			val, err := decode(v)
			if err != nil {
				return nil, err
			}
			m[k.Value] = val
		}
		if len(m) == 1 {
			for k, v := range m {
				if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
					return Intrinsic{Name: k, Arg: v}, nil
				}
			}
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := decode(c)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		var v any
		if n.Tag == "" || n.Tag == "!" {
			return n.Value, nil
		}
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

// asStrings reads a list of strings or a single string.
func asStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			out = append(out, scalarText(e))
		}
		return out
	}
	return nil
}

func asInt(v any) int {
	switch v := v.(type) {
	case int:
		return v
	case float64:
		return int(v)
	case string:
		n, _ := strconv.Atoi(v)
		return n
	}
	return 0
}

func asBool(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		b, _ := strconv.ParseBool(v)
		return b
	}
	return false
}

// scalarText renders a scalar the way CloudFormation passes it on: as text.
func scalarText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(v)
}
