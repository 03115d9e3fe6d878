package idempotent

import (
	"errors"
	"fmt"
	"slices"

	"github.com/jmespath-community/go-jmespath"
	"github.com/jmespath-community/go-jmespath/pkg/functions"
	"github.com/jmespath-community/go-jmespath/pkg/parsing"

	"github.com/idemlambda/idemlambda/idempotent/internal/keyjson"
)

// This file is the one home of key material read from JSON: the JMESPath
// engine and its functions, the decoding of documents, the canonical form
// and the rule of what counts as a missing key (contract §3.1). Wrap's
// WithKeyPath and WithPayloadPath, Wrap's whole-event key and
// sqsbatch.WithBodyKey all go through it.

// KeyPath is a compiled JMESPath key expression. Its Key method applies the
// library's rules: the key material is the canonical JSON of the result
// (object members sorted, no insignificant whitespace), and a missing result
// is no key. Wrap's WithKeyPath and sqsbatch.WithBodyKey use it; callers of
// Do who read a key from a JSON document can use it too, so every key follows
// one rule. A KeyPath is safe for concurrent use.
type KeyPath struct {
	expr string
	jp   jmespath.JMESPath
}

// CompileKeyPath compiles expr with the standard JMESPath functions,
// Powertools' powertools_json, powertools_base64 and powertools_base64_gzip,
// and the functions registered by WithJMESPathFunction in opts (the other
// options have no effect on the path, but a mistake in any of them is
// reported). An expression that does not compile, names an unknown function
// or calls one with the wrong number of arguments is a *ConfigError.
func CompileKeyPath(expr string, opts ...Option) (*KeyPath, error) {
	c := &config{}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	p, err := compileKeyPath(expr, c.functions)
	if err != nil {
		c.fail("CompileKeyPath", err)
	}
	if c.err != nil {
		return nil, c.err
	}
	return p, nil
}

// Key returns the key material the path selects in the JSON document doc,
// or "" when the result is missing: null, "", an empty list or object, or a
// list or object whose members are all missing (a multi-select over absent
// fields). An error, which wraps ErrNoKey, means doc is not exactly one JSON
// value or the expression failed on it (a function given the wrong type).
func (p *KeyPath) Key(doc []byte) (string, error) {
	v, err := decodeJSON(doc)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoKey, err)
	}
	k, err := p.key(v)
	if err != nil {
		return "", fmt.Errorf("%w: key path %q: %w", ErrNoKey, p.expr, err)
	}
	return k, nil
}

// String returns the expression.
func (p *KeyPath) String() string { return p.expr }

// key is Key on a decoded document.
func (p *KeyPath) key(doc any) (string, error) {
	v, err := p.search(doc)
	if err != nil {
		return "", err
	}
	return keyMaterial(v)
}

// search evaluates the expression on a decoded document. The engine is
// third-party code: a panic on an unusual document fails this one key, not
// the process.
func (p *KeyPath) search(doc any) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("JMESPath panicked: %v", r)
		}
	}()
	return p.jp.Search(doc)
}

// keyMaterial is the key material of a decoded JSON value: its canonical
// JSON, or "" when the value is missing. The string "1" and the number 1 are
// different keys.
func keyMaterial(v any) (string, error) {
	if missing(v) {
		return "", nil
	}
	return canonicalString(v)
}

// missing is the rule of contract §3.1: null, "", an empty list or object,
// or a list or object whose members are all missing (recursively) is no key.
// Every key read from JSON goes through it.
func missing(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case []any:
		for _, e := range v {
			if !missing(e) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, e := range v {
			if !missing(e) {
				return false
			}
		}
		return true
	}
	return false
}

// canonicalString encodes a decoded JSON value with object members sorted
// and no insignificant whitespace, so documents that differ only in member
// order or formatting give the same string. Strings are written byte for
// byte: a byte that is not UTF-8 is \xHH, never U+FFFD, so distinct values
// give distinct material (internal/keyjson). The encoding goes into a buffer
// on the stack first, so a short key costs one allocation, the string's.
func canonicalString(v any) (string, error) {
	var buf [128]byte
	b, err := keyjson.Append(buf[:0], v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// decodeJSON decodes exactly one JSON value. Numbers stay json.Number and
// keep every digit, so 12345678901234567 and its neighbour are different
// keys, and so are 1 and 1.0. (The engine's arithmetic, comparisons with
// number literals and number functions want float64: on event numbers they
// yield null or an error, never a wrong key.)
//
// Strings keep their raw bytes (invalid UTF-8 is not turned into U+FFFD, a
// lone surrogate escape becomes its own bytes) and an object that names a
// member twice is refused: encoding/json would keep its last member, other
// parsers the first, so such a document has no one meaning to key on.
func decodeJSON(raw []byte) (any, error) {
	doc, err := keyjson.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	return doc, nil
}

// compileKeyPath compiles expr with the built-in, Powertools and custom
// functions, and checks at compile time that every function it calls exists
// and gets an acceptable number of arguments: such a mistake is a
// configuration error on every call, never a missing key.
func compileKeyPath(expr string, custom []jmespath.FunctionEntry) (_ *KeyPath, err error) {
	if expr == "" {
		return nil, errors.New("empty JMESPath expression")
	}
	defer func() {
		// The engine's lexer has panicked on unusual runes (U+0080): a
		// bad expression is a configuration error, not a crash.
		if r := recover(); r != nil {
			err = fmt.Errorf("JMESPath %q: the parser panicked: %v", expr, r)
		}
	}()
	ast, err := parsing.NewParser().Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("JMESPath %q: %w", expr, err)
	}
	fns := append(powertoolsFunctions(), custom...)
	table := make(map[string][]jmespath.ArgSpec)
	for _, f := range builtinFunctions {
		table[f.Name] = f.Arguments
	}
	for _, f := range fns {
		table[f.Name] = f.Arguments
	}
	if err := checkCalls(ast, table); err != nil {
		return nil, fmt.Errorf("JMESPath %q: %w", expr, err)
	}
	jp, err := jmespath.Compile(expr, fns...)
	if err != nil {
		return nil, fmt.Errorf("JMESPath %q: %w", expr, err)
	}
	return &KeyPath{expr: expr, jp: jp}, nil
}

// builtinFunctions are the engine's standard functions.
var builtinFunctions = functions.GetDefaultFunctions()

// checkCalls walks the syntax tree: every function called must be in table
// and, when it declares its arguments, get a number of them it accepts.
func checkCalls(n parsing.ASTNode, table map[string][]jmespath.ArgSpec) error {
	if n.NodeType == parsing.ASTFunctionExpression {
		name, _ := n.Value.(string)
		args, ok := table[name]
		if !ok {
			return fmt.Errorf("unknown function %s()", name)
		}
		if len(args) > 0 {
			lo, hi, variadic := 0, len(args), false
			for _, a := range args {
				if !a.Optional {
					lo++
				}
				variadic = variadic || a.Variadic
			}
			if got := len(n.Children); got < lo || (!variadic && got > hi) {
				return fmt.Errorf("function %s() takes %s, not %d", name, arity(lo, hi, variadic), got)
			}
		}
	}
	for _, c := range n.Children {
		if err := checkCalls(c, table); err != nil {
			return err
		}
	}
	return nil
}

func arity(lo, hi int, variadic bool) string {
	switch {
	case variadic:
		return fmt.Sprintf("%d or more arguments", lo)
	case lo == hi:
		return fmt.Sprintf("%d argument(s)", lo)
	}
	return fmt.Sprintf("%d to %d arguments", lo, hi)
}

// reservedFunction reports whether name is taken by a built-in or Powertools
// function, which custom functions may not replace.
func reservedFunction(name string) bool {
	return slices.ContainsFunc(builtinFunctions, func(f jmespath.FunctionEntry) bool { return f.Name == name }) ||
		slices.ContainsFunc(powertoolsFunctions(), func(f jmespath.FunctionEntry) bool { return f.Name == name })
}
