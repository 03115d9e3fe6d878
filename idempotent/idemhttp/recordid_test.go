package idemhttp_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
)

// TestRecordID checks that RecordID names the record the middleware wrote
// for a request, so an operator's tool finds it, and no other request's.
func TestRecordID(t *testing.T) {
	store := idempotent.NewMemoryStore()
	h := idemhttp.Middleware(idempotent.New(store, idempotent.WithName("orders")))(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(`{"n":1}`))
	req.Header.Set("Idempotency-Key", "k-1")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if store.Len() != 1 {
		t.Fatalf("store holds %d records, want 1", store.Len())
	}
	tests := []struct {
		name                     string
		scope, method, path, key string
		found                    bool
	}{
		{"the request", "", "POST", "/orders", "k-1", true},
		{"anonymous spelled out", "anonymous", "POST", "/orders", "k-1", true},
		{"other key", "", "POST", "/orders", "k-2", false},
		{"other path", "", "POST", "/order", "k-1", false},
		{"other method", "", "PUT", "/orders", "k-1", false},
		{"other caller", "user-1", "POST", "/orders", "k-1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := store.Get(t.Context(), idemhttp.RecordID("orders", tt.scope, tt.method, tt.path, tt.key))
			if err != nil {
				t.Fatal(err)
			}
			if (rec != nil) != tt.found {
				t.Fatalf("record found = %v, want %v", rec != nil, tt.found)
			}
		})
	}
}
