package idemhttp_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/idemhttp"
)

// rawValue is a header value that is not valid UTF-8 (obs-text bytes, which
// HTTP/1.1 carries as they are).
const rawValue = "caf\xe9 \xff\xfe"

// trailerHandler answers with a non-UTF-8 header, a declared trailer and an
// undeclared (http.TrailerPrefix) one, flushing between chunks when flush is
// set; it records its record key.
func trailerHandler(flush bool, runs *int, id *string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*runs++
		*id, _ = idempotent.RecordIDFromContext(r.Context())
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Raw", rawValue)
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(http.StatusOK)
		for _, chunk := range []string{"data: one\n\n", "data: two\n\n"} {
			_, _ = io.WriteString(w, chunk)
			if flush {
				w.(http.Flusher).Flush()
			}
		}
		w.Header().Set("X-Checksum", "sum-\xe9")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})
}

func TestReplayByteForByte(t *testing.T) {
	for _, flush := range []bool{false, true} {
		name := "buffered"
		if flush {
			name = "flushed within the limit (server-sent events)"
		}
		t.Run(name, func(t *testing.T) {
			var runs int
			var id string
			srv := httptest.NewServer(idemhttp.Middleware(idempotent.New(idempotent.NewMemoryStore()))(trailerHandler(flush, &runs, &id)))
			defer srv.Close()
			for i := range 2 {
				res, body := post(t, srv, "k", `{}`)
				if res.StatusCode != 200 || body != "data: one\n\ndata: two\n\n" {
					t.Fatalf("call %d: %d %q", i, res.StatusCode, body)
				}
				if got := res.Header.Values("X-Raw"); !slices.Equal(got, []string{rawValue}) {
					t.Fatalf("call %d: X-Raw %q, want %q", i, got, rawValue)
				}
				if res.Trailer.Get("X-Checksum") != "sum-\xe9" || res.Trailer.Get("X-Late") != "late" {
					t.Fatalf("call %d: trailers %q", i, res.Trailer)
				}
				if (res.Header.Get(idemhttp.HeaderReplayed) == "true") != (i == 1) {
					t.Fatalf("call %d: replayed %q", i, res.Header.Get(idemhttp.HeaderReplayed))
				}
			}
			if runs != 1 {
				t.Fatalf("handler ran %d times", runs)
			}
		})
	}
}

// formatOneRecord is a response as the previous format stored it
// (http.Header as JSON): {"status":...,"header":{...},"body":base64}.
const formatOneRecord = `{"status":201,"header":{"Content-Type":["text/plain"],"X-Multi":["a","b"]},"body":"b2xkIGJvZHk="}`

// putCompleted writes a completed record with data the way the core does
// (Acquire, then Complete with the owner).
func putCompleted(t *testing.T, store idempotent.Store, id, fp string, data []byte) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	rec := idempotent.Record{ID: id, Status: idempotent.StatusInProgress, Expiration: now.Add(time.Hour),
		LeaseExpiration: now.Add(time.Minute), Owner: "test-owner", Fingerprint: fp}
	if _, ok, err := store.Acquire(ctx, rec, now); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	rec.Status, rec.LeaseExpiration, rec.Data = idempotent.StatusCompleted, time.Time{}, data
	if err := store.Complete(ctx, rec); err != nil {
		t.Fatal(err)
	}
}

// TestFormatOneRecordReplays: a record written by the previous format (and
// a marker-less one) still replays after the upgrade; an unknown version is
// a corrupt record (500), never a guess.
func TestFormatOneRecordReplays(t *testing.T) {
	// Learn the record id and fingerprint of the request from a first run.
	probe := idempotent.NewMemoryStore()
	var runs int
	var id string
	srv := httptest.NewServer(idemhttp.Middleware(idempotent.New(probe))(trailerHandler(false, &runs, &id)))
	post(t, srv, "k", `{}`)
	srv.Close()
	rec, err := probe.Get(context.Background(), id)
	if err != nil || rec == nil {
		t.Fatalf("get %s: %v %v", id, rec, err)
	}
	if !strings.HasPrefix(string(rec.Data), `{"v":2,`) {
		t.Fatalf("stored %s, want format 2", rec.Data)
	}

	tests := []struct {
		name   string
		data   string
		status int
		body   string
	}{
		{name: "format 1", data: formatOneRecord, status: 201, body: "old body"},
		{name: "unknown version", data: `{"v":3,"status":200,"header":[]}`, status: 500},
		{name: "format 2 without header list", data: `{"v":2,"status":200}`, status: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := idempotent.NewMemoryStore()
			putCompleted(t, store, id, rec.Fingerprint, []byte(tt.data))
			runs = 0
			srv := httptest.NewServer(idemhttp.Middleware(idempotent.New(store))(trailerHandler(false, &runs, new(string))))
			defer srv.Close()
			res, body := post(t, srv, "k", `{}`)
			if res.StatusCode != tt.status || runs != 0 {
				t.Fatalf("%d %q, handler ran %d times", res.StatusCode, body, runs)
			}
			if tt.status == 201 && (body != tt.body || res.Header.Get(idemhttp.HeaderReplayed) != "true" ||
				strings.Join(res.Header.Values("X-Multi"), ",") != "a,b" || res.Header.Get("Content-Type") != "text/plain") {
				t.Fatalf("replay %q %v", body, res.Header)
			}
		})
	}
}

// TestWriterControls: http.ResponseController reaches the server's writer
// through the recorder (a write deadline), but cannot hijack a guarded
// request; a replay hook never sees the marker of a response not stored.
func TestWriterControls(t *testing.T) {
	var deadlineErr, hijackErr error
	big := strings.Repeat("z", 100)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		deadlineErr = rc.SetWriteDeadline(time.Now().Add(time.Minute))
		var conn net.Conn
		if conn, _, hijackErr = rc.Hijack(); hijackErr == nil {
			conn.Close() // the client sees the connection end, not a hang
			return
		}
		_, _ = io.WriteString(w, big)
	})
	hooks := 0
	srv := httptest.NewServer(idemhttp.Middleware(idempotent.New(idempotent.NewMemoryStore()), idemhttp.WithMaxBody(10),
		idemhttp.WithReplayHook(func(context.Context, idempotent.Replay, http.Header) { hooks++ }))(h))
	defer srv.Close()
	if res, body := post(t, srv, "k", `{}`); res.StatusCode != 200 || body != big {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
	if deadlineErr != nil || hijackErr == nil {
		t.Fatalf("SetWriteDeadline: %v, Hijack: %v (want an error)", deadlineErr, hijackErr)
	}
	if res, _ := post(t, srv, "k", `{}`); res.StatusCode != http.StatusGone || hooks != 0 {
		t.Fatalf("duplicate %d, replay hook called %d times", res.StatusCode, hooks)
	}
}
