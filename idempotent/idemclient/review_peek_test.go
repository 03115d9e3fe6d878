package idemclient_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemclient"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
	"github.com/idemlambda/idemlambda/idempotent/internal/httpidem"
)

// reviewCompress is a compressing layer in front of the API (a gzip
// middleware, or a proxy that compresses): a response goes out gzipped
// when the request accepts gzip.
func reviewCompress(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(rec.Body.Bytes())
		_ = zw.Close()
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(buf.Bytes())
	})
}

// TestReviewPermanentProblemGzip: our server's permanent 500 behind a
// compressing layer. net/http decompresses it when it asked for gzip
// itself; when the caller asked (its own Accept-Encoding, as a proxy that
// forwards its client's header does), the body stays gzipped. Either way
// it is our server's configuration-error: contract §8 says it is final.
// The caller gets the body whole as the server sent it.
func TestReviewPermanentProblemGzip(t *testing.T) {
	api := reviewCompress(idemhttp.Middleware(guard(idempotent.NewMemoryStore()), idemhttp.WithMaxBody(-1))(&payments{}))
	for _, tt := range []struct {
		name           string
		acceptEncoding string
	}{
		{"decompressed by net/http", ""},
		{"caller accepts gzip", "gzip"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := apiServer(t, api)
			var seen attempts
			base := &http.Transport{}
			t.Cleanup(base.CloseIdleConnections)
			rt := idemclient.NewTransport(base, idemclient.WithTestTime(newFakeClock().Now, newFakeClock().Sleep, func() float64 { return 1 }),
				idemclient.WithLogger(quiet()), seen.option())
			req := newRequest(t, t.Context(), http.MethodPost, srv.URL+"/payments", `{"amount":1}`)
			if tt.acceptEncoding != "" {
				req.Header.Set("Accept-Encoding", tt.acceptEncoding)
			}
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			raw := readBody(t, resp)
			body := raw
			if resp.Header.Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(strings.NewReader(raw))
				if err != nil {
					t.Fatalf("the caller's gzip body does not decode: %v", err)
				}
				b, err := io.ReadAll(zr)
				if err != nil {
					t.Fatalf("the caller's gzip body does not decode: %v", err)
				}
				body = string(b)
			}
			p := problemOf(t, &http.Response{Header: http.Header{"Content-Type": {resp.Header.Get("Content-Type")}}}, body)
			if resp.StatusCode != 500 || p.Type != httpidem.TypeConfig {
				t.Fatalf("got %d %s, want our 500 configuration-error", resp.StatusCode, body)
			}
			if n := len(srv.Hits()); n != 1 {
				infos := seen.all()
				t.Errorf("%d attempts (Problem of the first %q), want 1: our server's configuration-error is final (contract §8), gzipped or not", n, infos[0].Problem)
			}
		})
	}
}

// TestReviewPermanentProblemHTTP2: the peek over HTTP/2 (TLS): our
// corrupt-record 500 is final and its body reaches the caller whole.
func TestReviewPermanentProblemHTTP2(t *testing.T) {
	api := idemhttp.Middleware(guard(corruptStore(t, `{"amount":1250}`, "k-corrupt")))(&payments{})
	hits := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.ProtoMajor != 2 {
			t.Errorf("proto %s, want HTTP/2", r.Proto)
		}
		api.ServeHTTP(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	rt := idemclient.NewTransport(srv.Client().Transport, idemclient.WithLogger(quiet()),
		idemclient.WithTestTime(newFakeClock().Now, newFakeClock().Sleep, func() float64 { return 1 }))
	req := newRequest(t, t.Context(), http.MethodPost, srv.URL+"/payments", `{"amount":1250}`)
	req.Header.Set(idemclient.HeaderKey, "k-corrupt")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	p := problemOf(t, resp, body)
	if hits != 1 || resp.StatusCode != 500 || p.Type != httpidem.TypeCorruptRecord || resp.ProtoMajor != 2 {
		t.Fatalf("%d attempts, %s %d %s; want 1 attempt, the HTTP/2 corrupt-record 500 whole", hits, resp.Proto, resp.StatusCode, body)
	}
}

// TestReviewProblemBodyWhole: a handler's own 500 problem of every size
// around the 4 KB peek, sent with Content-Length and chunked (flushed in
// pieces), and our permanent problem with trailing padding: the caller
// gets exactly the bytes of the response it is given.
func TestReviewProblemBodyWhole(t *testing.T) {
	problem := func(typ string, size int) string {
		head := fmt.Sprintf(`{"type":%q,"status":500,"detail":"`, typ)
		pad := max(size-len(head)-2, 0)
		return head + strings.Repeat("d", pad) + `"}`
	}
	for _, size := range []int{0, 1, 100, 4094, 4095, 4096, 4097, 8192, 70000} {
		for _, chunked := range []bool{false, true} {
			for _, typ := range []string{"https://example.com/own", httpidem.TypeConfig} {
				name := fmt.Sprintf("%d bytes, chunked %v, %s", size, chunked, typ[strings.LastIndexAny(typ, "/#")+1:])
				t.Run(name, func(t *testing.T) {
					body := func(n int) string {
						if size == 0 {
							return ""
						}
						b := problem(typ, size)
						return strings.Replace(b, `"detail":"d`, `"detail":"`+strconv.Itoa(n), 1)
					}
					srv := newServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
						b := body(n)
						w.Header().Set("Content-Type", httpidem.ContentTypeProblem)
						if !chunked {
							w.Header().Set("Content-Length", strconv.Itoa(len(b)))
						}
						w.WriteHeader(500)
						for len(b) > 0 {
							k := min(len(b), 777)
							_, _ = io.WriteString(w, b[:k])
							b = b[k:]
							if chunked {
								_ = http.NewResponseController(w).Flush()
							}
						}
					})
					resp, err := newTransport(t, newFakeClock(), idemclient.WithMaxAttempts(3)).RoundTrip(
						newRequest(t, t.Context(), http.MethodPost, srv.URL, `{}`))
					if err != nil {
						t.Fatal(err)
					}
					got := readBody(t, resp)
					n := len(srv.Hits())
					if want := body(n); got != want {
						t.Fatalf("after %d attempts the caller read %d bytes, the server sent %d for that attempt (first diff at %d)", n, len(got), len(want), diffAt(got, want))
					}
				})
			}
		}
	}
}

func diffAt(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestReviewEarlyHints: a 103 Early Hints before our permanent 500: the
// final response is what the peek reads; it is final.
func TestReviewEarlyHints(t *testing.T) {
	api := idemhttp.Middleware(guard(idempotent.NewMemoryStore()), idemhttp.WithMaxBody(-1))(&payments{})
	srv := apiServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		api.ServeHTTP(w, r)
	}))
	resp, err := newTransport(t, newFakeClock()).RoundTrip(newRequest(t, t.Context(), http.MethodPost, srv.URL+"/payments", `{}`))
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if p := problemOf(t, resp, body); len(srv.Hits()) != 1 || p.Type != httpidem.TypeConfig {
		t.Fatalf("%d attempts, %d %s; want 1, our configuration-error", len(srv.Hits()), resp.StatusCode, body)
	}
}

// TestReviewProblemWithoutBody: a base RoundTripper that answers a 500
// problem with a nil Body or http.NoBody: no panic, retried as any 500,
// the last response returned.
func TestReviewProblemWithoutBody(t *testing.T) {
	for _, nb := range []io.ReadCloser{nil, http.NoBody} {
		t.Run(fmt.Sprintf("%T", nb), func(t *testing.T) {
			calls := 0
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				calls++
				return &http.Response{StatusCode: 500, Header: http.Header{"Content-Type": {httpidem.ContentTypeProblem}},
					Body: nb, Request: r, ContentLength: -1}, nil
			})
			rt := idemclient.NewTransport(base, idemclient.WithLogger(quiet()), idemclient.WithMaxAttempts(2),
				idemclient.WithTestTime(newFakeClock().Now, newFakeClock().Sleep, func() float64 { return 1 }))
			resp, err := rt.RoundTrip(newRequest(t, t.Context(), http.MethodPost, "http://127.0.0.1:1/", `{}`))
			if err != nil || resp.StatusCode != 500 || calls != 2 {
				t.Fatalf("%v %v after %d calls; want the last 500 after 2", resp, err, calls)
			}
		})
	}
}
