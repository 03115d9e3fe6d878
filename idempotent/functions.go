package idempotent

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"regexp"

	"github.com/jmespath-community/go-jmespath"
)

// maxDecoded bounds what powertools_base64_gzip inflates, so a small event
// cannot exhaust the function's memory.
const maxDecoded = 32 << 20

// powertoolsFunctions are the JMESPath functions of Powertools for AWS Lambda,
// so expressions written for it work verbatim:
//
//   - powertools_json(s): the JSON document in the string s, e.g.
//     powertools_json(body).[user, orderId];
//   - powertools_base64(s): the base64-decoded string s, e.g.
//     powertools_json(powertools_base64(data)).id;
//   - powertools_base64_gzip(s): s base64-decoded and then gunzipped.
//
// A string that does not decode fails the key (or the payload) with an error
// wrapping ErrNoKey.
func powertoolsFunctions() []jmespath.FunctionEntry {
	str := []jmespath.ArgSpec{{Types: []jmespath.JpType{jmespath.JpString}}}
	return []jmespath.FunctionEntry{
		{Name: "powertools_json", Arguments: str, Handler: func(args []any) (any, error) {
			v, err := decodeJSON([]byte(args[0].(string)))
			if err != nil {
				return nil, fmt.Errorf("powertools_json: %w", err)
			}
			return v, nil
		}},
		{Name: "powertools_base64", Arguments: str, Handler: func(args []any) (any, error) {
			b, err := base64.StdEncoding.DecodeString(args[0].(string))
			if err != nil {
				return nil, fmt.Errorf("powertools_base64: %w", err)
			}
			return string(b), nil
		}},
		{Name: "powertools_base64_gzip", Arguments: str, Handler: func(args []any) (any, error) {
			b, err := base64.StdEncoding.DecodeString(args[0].(string))
			if err != nil {
				return nil, fmt.Errorf("powertools_base64_gzip: %w", err)
			}
			r, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				return nil, fmt.Errorf("powertools_base64_gzip: %w", err)
			}
			out, err := io.ReadAll(io.LimitReader(r, maxDecoded+1))
			if err != nil {
				return nil, fmt.Errorf("powertools_base64_gzip: %w", err)
			}
			if len(out) > maxDecoded {
				return nil, fmt.Errorf("powertools_base64_gzip: more than %d bytes once inflated", maxDecoded)
			}
			return string(out), nil
		}},
	}
}

var functionName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// WithJMESPathFunction registers a custom function for the JMESPath
// expressions of WithKeyPath, WithPayloadPath and CompileKeyPath (pass it to
// the guard, so sqsbatch.WithBodyKey knows it too). fn receives the
// evaluated arguments as decoded JSON values — nil, bool, string,
// json.Number (numbers of the event keep every digit), float64 (number
// literals of the expression), []any and map[string]any — and checks their number and types itself; its result is
// normalised through JSON. An error from fn fails the key with an error
// wrapping ErrNoKey. The name must be an identifier that is not a standard
// JMESPath or Powertools function, and may be registered once.
//
//	idempotent.WithKeyPath("tenant_key(@)"),
//	idempotent.WithJMESPathFunction("tenant_key", func(args []any) (any, error) { ... }),
func WithJMESPathFunction(name string, fn func(args []any) (any, error)) Option {
	return func(c *config) {
		switch {
		case !functionName.MatchString(name):
			c.fail("WithJMESPathFunction", fmt.Errorf("function name %q is not an identifier", name))
			return
		case reservedFunction(name):
			c.fail("WithJMESPathFunction", fmt.Errorf("function %s() is built in and cannot be replaced", name))
			return
		case fn == nil:
			c.fail("WithJMESPathFunction", fmt.Errorf("function %s() is nil", name))
			return
		}
		for _, f := range c.functions {
			if f.Name == name {
				c.fail("WithJMESPathFunction", fmt.Errorf("function %s() is registered twice", name))
				return
			}
		}
		c.functions = append(c.functions, jmespath.FunctionEntry{Name: name, Handler: func(args []any) (any, error) {
			v, err := fn(args)
			if err != nil {
				return nil, fmt.Errorf("%s(): %w", name, err)
			}
			// Normalise the result to decoded JSON, the only values the
			// engine and the key rules know.
			if s, ok := v.(string); ok {
				return s, nil // kept byte for byte
			}
			kj, err := encodeKeyJSON(v)
			if err != nil {
				return nil, fmt.Errorf("%s(): result does not encode as JSON: %w", name, err)
			}
			v, err = decodeJSON(kj.bytes())
			kj.free()
			if err != nil {
				return nil, fmt.Errorf("%s(): %w", name, err)
			}
			return v, nil
		}})
	}
}
