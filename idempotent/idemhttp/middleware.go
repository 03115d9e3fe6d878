package idemhttp

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// Header names and media type used by the middleware.
const (
	// HeaderKey is the request header that carries the idempotency key.
	HeaderKey = httpidem.HeaderKey
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
// flushes, is streamed through as it is written and not stored (the key is
// released). Replays are always whole. Every error response made here is
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
			resp, err := httpidem.Serve(r.Context(), cfg, g, req, codec{}, func(ctx context.Context) (*response, error) {
				if !req.guarded {
					next.ServeHTTP(w, r)
					return &response{sent: true}, nil
				}
				r2 := r.WithContext(ctx)
				r2.Body = io.NopCloser(bytes.NewReader(req.body))
				rec := &recorder{w: w, header: make(http.Header), limit: o.maxBody}
				next.ServeHTTP(rec, r2)
				return rec.finish()
			})
			if err != nil {
				if errors.Is(err, errStreamed) {
					o.log.InfoContext(r.Context(), "response streamed and not stored: over the buffering limit or flushed by the handler; key released",
						slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int64("limit", o.maxBody))
					return
				}
				// Not reachable: the run function returns no other error.
				o.log.ErrorContext(r.Context(), "idempotency middleware failed", slog.Any("error", err))
				return
			}
			if resp == nil || resp.sent {
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

// response is what is stored for net/http: status, header and body.
type response struct {
	Status int         `json:"status"`
	Header http.Header `json:"header,omitempty"`
	Body   []byte      `json:"body,omitempty"`
	sent   bool        // already written to the client
}

func (p *response) write(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range p.Header {
		h[k] = v
	}
	w.WriteHeader(p.Status)
	if len(p.Body) > 0 {
		_, _ = w.Write(p.Body)
	}
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

// errStreamed leaves idempotent.Do when the response went to the client
// while it was written, so Do releases the key.
var errStreamed = errors.New("idemhttp: response streamed, not stored")

// recorder captures a response up to limit bytes; past it (or on Flush) it
// sends what it holds and passes the rest through.
type recorder struct {
	w           http.ResponseWriter
	header      http.Header // what the handler sees and edits
	sentHeader  http.Header // snapshot at WriteHeader, like net/http
	status      int
	wroteHeader bool
	buf         bytes.Buffer
	limit       int64
	streaming   bool
}

func (c *recorder) Header() http.Header {
	if c.streaming {
		return c.w.Header()
	}
	return c.header
}

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
		return c.w.Write(p)
	}
	if int64(c.buf.Len())+int64(len(p)) > c.limit {
		if err := c.stream(); err != nil {
			return 0, err
		}
		return c.w.Write(p)
	}
	return c.buf.Write(p)
}

// Flush sends the response so far and streams the rest: a handler that
// flushes wants its client to see bytes now, so the response is not stored.
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
	c.buf = bytes.Buffer{}
	return err
}

func (c *recorder) finish() (*response, error) {
	if c.streaming {
		return nil, errStreamed
	}
	if !c.wroteHeader {
		c.WriteHeader(http.StatusOK)
	}
	h := c.sentHeader
	body := c.buf.Bytes()
	if _, ok := h["Content-Type"]; !ok && len(body) > 0 && h.Get("X-Content-Type-Options") != "nosniff" {
		// What net/http would sniff when sending; stored so that the replay
		// carries the same header.
		h.Set("Content-Type", http.DetectContentType(body))
	}
	if len(h) == 0 {
		h = nil
	}
	return &response{Status: c.status, Header: h, Body: body}, nil
}
