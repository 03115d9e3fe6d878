package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent"
)

// fakeScripter answers every script with one fixed reply. Unit tests only:
// it checks how the store reads replies a real server would not send. The
// plain commands fail with the fixed error, or else answer WRONGTYPE, as for
// a key of the legacy layout, which sends every operation to its script.
type fakeScripter struct {
	Client
	val any
	err error
}

func (f fakeScripter) EvalSha(context.Context, string, []string, ...any) *redis.Cmd {
	return redis.NewCmdResult(f.val, f.err)
}

func (f fakeScripter) SetArgs(context.Context, string, any, redis.SetArgs) *redis.StatusCmd {
	return redis.NewStatusResult("", f.plainErr())
}

func (f fakeScripter) Get(context.Context, string) *redis.StringCmd {
	return redis.NewStringResult("", f.plainErr())
}

func (f fakeScripter) plainErr() error {
	if f.err != nil {
		return f.err
	}
	return replyError("WRONGTYPE Operation against a key holding the wrong kind of value")
}

// replyError is an error reply of the server, as go-redis returns one.
type replyError string

func (e replyError) Error() string { return string(e) }

func (replyError) RedisError() {}

// TestUnexpectedReplies: no reply the store does not expect is taken for
// success; failures of the client are *idempotent.StoreError.
func TestUnexpectedReplies(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	rec := idempotent.Record{ID: "k", Status: idempotent.StatusInProgress, Owner: "o",
		Expiration: now.Add(time.Hour), LeaseExpiration: now.Add(time.Minute)}
	down := errors.New("connection refused")
	tests := []struct {
		name        string
		val         any
		err         error
		wantStore   bool // *StoreError
		wantCorrupt bool // ErrCorruptRecord (Acquire and Get)
	}{
		{name: "client error", err: down, wantStore: true},
		{name: "closed client", err: redis.ErrClosed, wantStore: true},
		{name: "integer 0", val: int64(0), wantStore: true},
		{name: "integer 3", val: int64(3), wantStore: true},
		{name: "short array", val: []any{"COMPLETED"}, wantCorrupt: true},
		{name: "array with a number", val: []any{"COMPLETED", int64(1), nil, nil, nil, "x", nil}, wantCorrupt: true},
		{name: "float", val: 1.5, wantCorrupt: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(fakeScripter{val: tt.val, err: tt.err})
			check := func(op string, err error) {
				t.Helper()
				var se *idempotent.StoreError
				switch {
				case err == nil:
					t.Fatalf("%s = nil, want an error", op)
				case tt.wantStore && !errors.As(err, &se):
					t.Fatalf("%s = %v, want a *StoreError", op, err)
				case tt.wantCorrupt && !errors.Is(err, idempotent.ErrCorruptRecord):
					t.Fatalf("%s = %v, want ErrCorruptRecord", op, err)
				}
			}
			existing, ok, err := s.Acquire(t.Context(), rec, now)
			if ok || existing != nil {
				t.Fatalf("Acquire = %+v, %v, %v; want neither acquired nor a record", existing, ok, err)
			}
			check("Acquire", err)
			got, err := s.Get(t.Context(), "k")
			if got != nil {
				t.Fatalf("Get = %+v", got)
			}
			if !(tt.val == int64(0) || tt.val == int64(3)) { // an integer is no record: corrupt
				check("Get", err)
			} else if !errors.Is(err, idempotent.ErrCorruptRecord) {
				t.Fatalf("Get = %v, want ErrCorruptRecord", err)
			}
			// Complete and Release read an integer; anything else fails.
			if err := s.Complete(t.Context(), rec); err == nil || errors.Is(err, idempotent.ErrLeaseLost) != (tt.val == int64(0)) {
				t.Fatalf("Complete = %v", err)
			}
			if err := s.Release(t.Context(), "k", "o"); err == nil || errors.Is(err, idempotent.ErrLeaseLost) != (tt.val == int64(0)) {
				t.Fatalf("Release = %v", err)
			}
		})
	}
}
