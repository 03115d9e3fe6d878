package idempotent_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idemlambda/idemlambda/idempotent"
)

// clock is a manual clock for WithClock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// countingStore counts calls per operation and can be told to fail.
type countingStore struct {
	idempotent.Store
	acquire, get, complete, release atomic.Int64
	fail                            atomic.Pointer[error]
}

func newCounting(s idempotent.Store) *countingStore { return &countingStore{Store: s} }

func (s *countingStore) err() error {
	if p := s.fail.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *countingStore) Acquire(ctx context.Context, rec idempotent.Record, now time.Time) (*idempotent.Record, bool, error) {
	s.acquire.Add(1)
	if err := s.err(); err != nil {
		return nil, false, err
	}
	return s.Store.Acquire(ctx, rec, now)
}

func (s *countingStore) Get(ctx context.Context, key string) (*idempotent.Record, error) {
	s.get.Add(1)
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, key)
}

func (s *countingStore) Complete(ctx context.Context, rec idempotent.Record) error {
	s.complete.Add(1)
	if err := s.err(); err != nil {
		return err
	}
	return s.Store.Complete(ctx, rec)
}

func (s *countingStore) Release(ctx context.Context, key, owner string) error {
	s.release.Add(1)
	if err := s.err(); err != nil {
		return err
	}
	return s.Store.Release(ctx, key, owner)
}

func (s *countingStore) calls() int64 {
	return s.acquire.Load() + s.get.Load() + s.complete.Load() + s.release.Load()
}

func (s *countingStore) reset() {
	s.acquire.Store(0)
	s.get.Store(0)
	s.complete.Store(0)
	s.release.Store(0)
}

var errBoom = errors.New("boom")

type order struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

type receipt struct {
	OrderID string `json:"orderId"`
	Run     int64  `json:"run"`
}

// wrapWith is Wrap over a new guard for tests whose option lists mix guard
// options (idempotent.Option) and WrapOptions; any other value panics.
func wrapWith[In, Out any](store idempotent.Store, h func(context.Context, In) (Out, error), opts ...any) func(context.Context, In) (Out, error) {
	var gopts []idempotent.Option
	var wopts []idempotent.WrapOption
	for _, o := range opts {
		switch o := o.(type) {
		case idempotent.Option:
			gopts = append(gopts, o)
		case idempotent.WrapOption:
			wopts = append(wopts, o)
		default:
			panic(fmt.Sprintf("wrapWith: %T is neither a guard option nor a WrapOption", o))
		}
	}
	return idempotent.Wrap(idempotent.New(store, gopts...), h, wopts...)
}
