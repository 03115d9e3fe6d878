package httpidem

import (
	"context"

	"github.com/idemlambda/idemlambda/idempotent"
)

// Serve runs one request through the HTTP idempotency semantics. run calls
// the user's handler with the context it is given (which carries the record
// key, see idempotent.RecordIDFromContext). The returned error is only ever the
// handler's own error (after its key was released); every other failure is
// a problem response. Each request is reported to the observers of the
// guard (idempotent.HTTPReport), guarded or not.
func Serve[R any](ctx context.Context, c *Config, g *idempotent.Guard, req Request, codec Codec[R], run func(context.Context) (R, error)) (R, error) {
	resp, err := serve(ctx, c, g, req, codec, run)
	if c.observer.HTTP != nil {
		e := idempotent.HTTPReport{Method: req.Method()}
		if err == nil {
			e.Status = codec.Status(resp)
		}
		c.observer.HTTP(ctx, e)
	}
	return resp, err
}
