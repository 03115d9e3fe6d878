package redisstore_test

import (
	"testing"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore/internal/testredis"
)

// now is the tests' fixed clock, years away from the server's: the store
// must never let the server's clock judge a record.
var (
	now     = time.Unix(1_800_000_000, 250_000_000).UTC()
	testKey = "orders#3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7"
)

// held is the in-progress record owner writes at now: expiring in an hour,
// its lease ending in 30 s.
func held(owner string) idempotent.Record {
	return idempotent.Record{
		ID:              testKey,
		Status:          idempotent.StatusInProgress,
		Expiration:      now.Add(time.Hour).Truncate(time.Second),
		LeaseExpiration: now.Add(30 * time.Second).Truncate(time.Millisecond),
		Owner:           owner,
		Fingerprint:     "fp",
	}
}

// done is rec completed with data, expiring at exp.
func done(rec idempotent.Record, data []byte, exp time.Time) idempotent.Record {
	rec.Status, rec.Data, rec.Expiration, rec.LeaseExpiration = idempotent.StatusCompleted, data, exp.Truncate(time.Second), time.Time{}
	return rec
}

// newStore returns a store on the local server with a key prefix of its own,
// and the counter of the commands its client sends.
func newStore(t *testing.T, optFns ...func(*redisstore.Options)) (*redisstore.Store, *testredis.Counter) {
	t.Helper()
	client, calls := testredis.CountingClient(t)
	opts := append([]func(*redisstore.Options){redisstore.WithKeyPrefix(testredis.Prefix(t))}, optFns...)
	return redisstore.New(client, opts...), calls
}

// clock is a settable clock for idempotent.WithClock.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }
