package idemhttp

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// Header names and media type used by the middleware.
const (
	// HeaderKey is the request header that carries the idempotency key.
	HeaderKey = httpidem.HeaderKey
	// HeaderAttempt, with a number of 2 or more, marks a request as a retry
	// of one sent before with the same key (idemclient sends it on every
	// retry); such a request reads its record before writing, so a replay
	// costs a read. It changes no outcome.
	HeaderAttempt = httpidem.HeaderAttempt
	// HeaderReplayed is set to "true" on every replayed response.
	HeaderReplayed = httpidem.HeaderReplayed
	// ContentTypeProblem is the media type of the library's error responses
	// (RFC 9457).
	ContentTypeProblem = httpidem.ContentTypeProblem
)

// DefaultStored is the default stored-status policy: 2xx, 3xx and 4xx except
// 408, 409, 425 and 429.
func DefaultStored(status int) bool { return httpidem.DefaultStored(status) }

// Middleware makes the handlers it wraps idempotent by the Idempotency-Key
// header, with the semantics of the API Gateway adapters (idempotent/apigw):
//
//	http.ListenAndServe(addr, idemhttp.Middleware(idempotent.New(store), idemhttp.WithScope(userID))(mux))
//
// A guarded request (POST, PATCH) with a valid key runs the handler at most
// once per principal, method, path and key within the TTL. The handler's
// status, headers and body are captured, buffered up to the WithMaxBody
// limit, and stored when the policy says so; the response is then sent.
// A duplicate with the same method, path, query and body gets the stored
// response with Idempotent-Replayed: true, another query or body 422, a
// duplicate while the first runs 409 with Retry-After: 1, a store failure 503 (before the
// handler runs; after it ran, 503 "outcome unknown"). A response over the limit, or one the handler
// flushes, is streamed through as it is written. A streamed response of at
// most the limit (a short server-sent event stream) is kept as it goes and
// stored like any other; a longer 2xx one completes the key without a
// stored response (the handler never runs again for it; a duplicate gets
// 410, problem type response-not-stored); any other streamed response
// releases the key. Replays are always whole, trailers included. Every error response made here is
// application/problem+json.
//
// The middleware is safe for concurrent use; the handler sees the record key
// through idempotent.RecordIDFromContext(r.Context()).
func Middleware(g *idempotent.Guard, opts ...Option) func(http.Handler) http.Handler {
	base := httpidem.NewConfig(g, opts)
	o := &settings{
		scope:   httpidem.ScopeFunc[func(*http.Request) (string, error)](base, "func(*http.Request) (string, error)"),
		maxBody: cmp.Or(base.MaxBody, DefaultMaxBody),
		log:     base.Logger,
	}
	base.Finish()
	return func(next http.Handler) http.Handler {
		cfg := base
		if next == nil {
			c := *base // this handler only
			c.Fail("handler", errors.New("nil handler"))
			cfg = &c
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			req := &request{r: r, o: o}
			var first *response // the handler's, when it ran guarded
			resp, err := httpidem.Serve(r.Context(), cfg, g, req, codec{}, func(ctx context.Context) (*response, error) {
				if !req.guarded {
					next.ServeHTTP(w, r)
					return &response{sent: true}, nil
				}
				r2 := r.WithContext(ctx)
				r2.Body = io.NopCloser(bytes.NewReader(req.body))
				rec := &recorder{w: w, header: make(http.Header), limit: o.maxBody}
				next.ServeHTTP(rec, r2)
				resp, err := rec.finish()
				first = resp
				return resp, err
			})
			if err != nil {
				// Not reachable: the run function returns no other error.
				o.log.ErrorContext(r.Context(), "idempotency middleware failed", slog.Any("error", err))
				return
			}
			if resp == nil || resp.sent {
				return
			}
			if first != nil && first.sent {
				// The handler's response went out while it was written; what
				// the idempotency layer says now (its result could not be
				// stored: 503, 409) cannot reach the client.
				o.log.ErrorContext(r.Context(), "response already sent; idempotency answer dropped",
					slog.Int("status", resp.Status), slog.String("method", r.Method), slog.String("path", r.URL.Path))
				return
			}
			resp.write(w)
		})
	}
}

// settings are the middleware's own, read from its Config once.
type settings struct {
	scope   func(*http.Request) (string, error)
	maxBody int64
	log     *slog.Logger
}

// request adapts *http.Request to httpidem.Request.
type request struct {
	r       *http.Request
	o       *settings
	body    []byte
	guarded bool // Body was read: the request runs inside idempotent.Do
}

func (q *request) Method() string { return strings.ToUpper(q.r.Method) }
func (q *request) Path() string   { return q.r.URL.EscapedPath() }
func (q *request) Query() string  { return httpidem.CanonicalQuery(q.r.URL.RawQuery) }
func (q *request) Header(name string) []string {
	return q.r.Header.Values(name)
}

func (q *request) Body() ([]byte, error) {
	q.guarded = true
	if q.r.Body == nil || q.r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(q.r.Body, q.o.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if int64(len(b)) > q.o.maxBody {
		return nil, &httpidem.BodyTooLargeError{Limit: q.o.maxBody}
	}
	q.body = b
	return b, nil
}

// Principal is the scope function's answer. Without one, a request that
// carries credentials the middleware can see is refused rather than put in
// the shared anonymous scope.
func (q *request) Principal(context.Context) (string, error) {
	if q.o.scope != nil {
		return q.o.scope(q.r)
	}
	switch {
	case len(q.r.Header.Values("Authorization")) > 0:
		return "", &httpidem.UnidentifiedCallerError{Credentials: "an Authorization header"}
	case q.r.TLS != nil && len(q.r.TLS.PeerCertificates) > 0:
		return "", &httpidem.UnidentifiedCallerError{Credentials: "a TLS client certificate"}
	}
	return "", nil
}

type codec struct{}

func (codec) Status(r *response) int {
	if r == nil {
		return 0
	}
	return r.Status
}

func (codec) Problem(p httpidem.Problem) *response {
	h := make(http.Header)
	for k, v := range p.Headers() {
		h.Set(k, v)
	}
	return &response{Status: p.Status, Header: h, Body: []byte(p.Body())}
}

// Delivered: r went to the client while it was written (or is the stored
// marker of such a response); see httpidem.DeliveredCodec.
func (codec) Delivered(r *response) bool { return r != nil && r.delivered }

func (codec) Replayed(r *response) *response {
	if r == nil {
		r = &response{Status: http.StatusOK}
	}
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	r.Header.Set(HeaderReplayed, "true")
	return r
}

// recorder captures a response up to limit bytes; past it (or on Flush) it
// sends what it holds and passes the rest through, keeping a copy (a tee)
// while the whole response stays within limit, so that a flushed stream
// (server-sent events) can still be stored and replayed whole.
type recorder struct {
	w           http.ResponseWriter
	header      http.Header // what the handler sees and edits
	sentHeader  http.Header // snapshot at WriteHeader, like net/http
	status      int
	wroteHeader bool
	buf         bytes.Buffer
	limit       int64
	streaming   bool
	overflow    bool // streaming, and more than limit bytes: not kept
}

func (c *recorder) Header() http.Header {
	if c.streaming {
		return c.w.Header()
	}
	return c.header
}

// Unwrap lets http.ResponseController reach the server's writer for what
// the recorder does not offer itself (deadlines, full duplex).
func (c *recorder) Unwrap() http.ResponseWriter { return c.w }

// errHijack refuses a hijack inside a guarded request.
var errHijack = errors.New("idemhttp: a guarded request's connection cannot be hijacked (its response could be neither stored nor replayed)")

// Hijack refuses: a hijacked connection's bytes bypass the recorder, so the
// key would complete with an empty response. Without this method
// http.ResponseController would hijack the server's writer through Unwrap.
func (c *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) { return nil, nil, errHijack }

func (c *recorder) WriteHeader(code int) {
	if c.wroteHeader || code < 200 {
		// Superfluous calls are ignored as net/http does; 1xx informational
		// responses are not forwarded.
		return
	}
	c.status = code
	c.wroteHeader = true
	c.sentHeader = c.header.Clone()
}

func (c *recorder) Write(p []byte) (int, error) {
	if !c.wroteHeader {
		c.WriteHeader(http.StatusOK)
	}
	if c.streaming {
		c.tee(p)
		return c.w.Write(p)
	}
	if int64(c.buf.Len())+int64(len(p)) > c.limit {
		if err := c.stream(); err != nil {
			return 0, err
		}
		c.tee(p)
		return c.w.Write(p)
	}
	return c.buf.Write(p)
}

// tee keeps a copy of p while the response stays within the limit.
func (c *recorder) tee(p []byte) {
	if c.overflow {
		return
	}
	if int64(c.buf.Len())+int64(len(p)) > c.limit {
		c.overflow = true
		c.buf = bytes.Buffer{}
		return
	}
	c.buf.Write(p)
}

// Flush sends the response so far and streams the rest: a handler that
// flushes wants its client to see bytes now.
func (c *recorder) Flush() {
	if !c.wroteHeader {
		c.WriteHeader(http.StatusOK)
	}
	if !c.streaming {
		_ = c.stream()
	}
	if f, ok := c.w.(http.Flusher); ok {
		f.Flush()
	}
}

// FlushError is Flush for http.ResponseController, with the server's
// error.
func (c *recorder) FlushError() error {
	if !c.wroteHeader {
		c.WriteHeader(http.StatusOK)
	}
	if !c.streaming {
		if err := c.stream(); err != nil {
			return err
		}
	}
	return http.NewResponseController(c.w).Flush()
}

// stream sends the header and what is buffered, which stays buffered as
// the start of the tee.
func (c *recorder) stream() error {
	c.streaming = true
	h := c.w.Header()
	for k, v := range c.sentHeader {
		h[k] = v
	}
	c.w.WriteHeader(c.status)
	if c.buf.Len() == 0 {
		return nil
	}
	_, err := c.w.Write(c.buf.Bytes())
	return err
}

// finish returns the response: whole (to be written, or already streamed
// and teed whole: sent), or delivered (streamed past the limit: only the
// status and header are known).
func (c *recorder) finish() (*response, error) {
	if !c.wroteHeader {
		c.WriteHeader(http.StatusOK)
	}
	h := c.sentHeader
	if c.streaming {
		if c.overflow {
			return &response{Status: c.status, Header: h, sent: true, delivered: true}, nil
		}
		// Content-Type was sniffed, if at all, from the first bytes the
		// server sent; the stored header is what the handler set.
		return &response{Status: c.status, Header: nilIfEmpty(h), Trailer: trailersOf(c.w.Header(), h), Body: c.buf.Bytes(), sent: true}, nil
	}
	body := c.buf.Bytes()
	if _, ok := h["Content-Type"]; !ok && len(body) > 0 && h.Get("X-Content-Type-Options") != "nosniff" {
		// What net/http would sniff when sending; stored so that the replay
		// carries the same header.
		h.Set("Content-Type", http.DetectContentType(body))
	}
	return &response{Status: c.status, Header: nilIfEmpty(h), Trailer: trailersOf(c.header, h), Body: body}, nil
}

func nilIfEmpty(h http.Header) http.Header {
	if len(h) == 0 {
		return nil
	}
	return h
}
