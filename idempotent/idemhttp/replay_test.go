package idemhttp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
)

func TestReplayHookAddsHeader(t *testing.T) {
	var statuses []int
	hook := idemhttp.WithReplayHook(func(_ context.Context, r idempotent.Replay, h http.Header) {
		h.Set("X-Replay-Source", r.Outcome.String())
	})
	obs := idempotent.WithObserver(idempotent.Observer{
		HTTP: func(_ context.Context, e idempotent.HTTPReport) { statuses = append(statuses, e.Status) },
	})
	mw := idemhttp.Middleware(idempotent.New(idempotent.NewMemoryStore(), obs, idempotent.WithLocalCache(4)), hook)
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Handler", "yes")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("made"))
	})))
	defer srv.Close()
	res, body := post(t, srv, "k-1", "x")
	if res.StatusCode != 201 || res.Header.Get("X-Replay-Source") != "" || body != "made" {
		t.Fatalf("first: %d %q %v", res.StatusCode, body, res.Header)
	}
	res, body = post(t, srv, "k-1", "x")
	if res.StatusCode != 201 || res.Header.Get("X-Replay-Source") != "cache_replayed" || res.Header.Get("X-Handler") != "yes" || res.Header.Get(idemhttp.HeaderReplayed) != "true" || body != "made" {
		t.Fatalf("replay: %d %q %v", res.StatusCode, body, res.Header)
	}
	if len(statuses) != 2 || statuses[0] != 201 || statuses[1] != 201 {
		t.Fatalf("HTTP events %v", statuses)
	}
}
