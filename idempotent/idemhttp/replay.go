package idemhttp

import (
	"context"
	"errors"
	"net/http"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// WithReplayHook calls f before a replayed response is written, with what
// was replayed and the response's header, which f may change (add a header,
// count replays per tenant from the request's context). Status and body are
// the stored ones, and the stored record is never changed. Replays from the
// store and from the local cache both pass through it. It is the net/http
// form of idempotent.WithReplayHook, whose result type here is internal.
func WithReplayHook(f func(ctx context.Context, r idempotent.Replay, h http.Header)) Option {
	return func(c *httpidem.Config) {
		if f == nil {
			c.Fail("idemhttp.WithReplayHook", errors.New("nil hook"))
			return
		}
		c.Call = append(c.Call, idempotent.WithReplayHook(func(ctx context.Context, r idempotent.Replay, resp *response) *response {
			if resp == nil {
				resp = &response{Status: http.StatusOK}
			}
			if resp.delivered {
				return resp // the marker: answered 410, nothing is replayed
			}
			if resp.Header == nil {
				resp.Header = make(http.Header)
			}
			f(ctx, r, resp.Header)
			return resp
		}))
	}
}
