package idemhttp_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
)

// serve sends one guarded POST through mw and returns the recorder and how
// often the handler ran so far.
func serve(mw func(http.Handler) http.Handler, runs *int, prep func(*http.Request)) *httptest.ResponseRecorder {
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*runs++
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"run":%d}`, *runs)
	}))
	req := httptest.NewRequest(http.MethodPost, "/payments", strings.NewReader(`{"amount":1}`))
	req.Header.Set(idemhttp.HeaderKey, "shared")
	if prep != nil {
		prep(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestCredentialsWithoutScopeAreRefused: without WithScope, a request that
// carries credentials the middleware can see is refused, never put in the
// shared anonymous scope; with WithScope two users stay apart.
func TestCredentialsWithoutScopeAreRefused(t *testing.T) {
	tests := []struct {
		name string
		prep func(*http.Request)
		want string // in the problem; "": served
	}{
		{name: "no credentials: anonymous"},
		{name: "Authorization header", prep: func(r *http.Request) { r.Header.Set("Authorization", "Bearer t") }, want: "Authorization header"},
		{name: "TLS client certificate", prep: func(r *http.Request) {
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{}}}
		}, want: "TLS client certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs := 0
			rec := serve(idemhttp.Middleware(idempotent.New(idempotent.NewMemoryStore())), &runs, tt.prep)
			if tt.want == "" {
				if rec.Code != 201 || runs != 1 {
					t.Fatalf("%d %s", rec.Code, rec.Body)
				}
				return
			}
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != 500 || runs != 0 || rec.Header().Get("Content-Type") != idemhttp.ContentTypeProblem ||
				!strings.Contains(string(body), "#unidentified-caller") || !strings.Contains(string(body), "WithScope") || !strings.Contains(string(body), tt.want) {
				t.Fatalf("%d %s (runs %d)", rec.Code, body, runs)
			}
		})
	}

	runs := 0
	mw := idemhttp.Middleware(idempotent.New(idempotent.NewMemoryStore()), idemhttp.WithScope(func(r *http.Request) (string, error) {
		return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), nil
	}))
	alice := serve(mw, &runs, func(r *http.Request) { r.Header.Set("Authorization", "Bearer alice") })
	bob := serve(mw, &runs, func(r *http.Request) { r.Header.Set("Authorization", "Bearer bob") })
	if alice.Code != 201 || bob.Code != 201 || bob.Header().Get(idemhttp.HeaderReplayed) != "" || runs != 2 {
		t.Fatalf("alice %d, bob %d %s, runs %d", alice.Code, bob.Code, bob.Body, runs)
	}
}
