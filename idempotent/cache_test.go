package idempotent

import (
	"bytes"
	"context"
	"reflect"
	"strconv"
	"testing"
)

type cacheInner struct {
	Tags []string
	Attr map[string][]int
}

// TestCacheHitsAreIndependent: every hit decodes the stored bytes, so
// changing one replayed result never changes another.
func TestCacheHitsAreIndependent(t *testing.T) {
	g := New(NewMemoryStore(), WithLocalCache(8))
	run := func() cacheInner {
		t.Helper()
		out, err := Do(t.Context(), g, "step", "k", func(_ context.Context) (cacheInner, error) {
			return cacheInner{Tags: []string{"a", "b"}, Attr: map[string][]int{"k": {1}}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := run() // runs, stores
	for i := range 4 {
		got := run() // hits
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("hit %d = %+v, want %+v", i, got, want)
		}
		got.Tags[0] = "changed"
		got.Attr["k"][0] = 9
		got.Attr["new"] = nil
	}
}

// TestLocalCacheBoundedByBytes: many large results never hold more than the
// byte bound (issue 10, defect 8), the entry bound still holds, and a result
// over the byte bound on its own is not cached at all.
func TestLocalCacheBoundedByBytes(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name        string
		opt         Option
		maxBytes    int64
		maxEntries  int
		resultBytes int
		results     int
	}{
		{"default bound, 1 MiB results", WithLocalCache(1024), DefaultLocalCacheBytes, 1024, mib, 40},
		{"4 MiB bound, 700 KB results", WithLocalCacheLimits(1024, 4*mib), 4 * mib, 1024, 700_000, 30},
		{"entry bound first", WithLocalCacheLimits(3, 64*mib), 64 * mib, 3, 1000, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := New(NewMemoryStore(), tt.opt)
			c := &g.c
			for i := range tt.results {
				res := bytes.Repeat([]byte{'a' + byte(i%26)}, tt.resultBytes)
				if _, err := Do(t.Context(), g, "step", strconv.Itoa(i), func(context.Context) ([]byte, error) { return res, nil }); err != nil {
					t.Fatal(err)
				}
				entries, held := c.cache.stats()
				if held > tt.maxBytes || entries > tt.maxEntries {
					t.Fatalf("after %d results the cache holds %d entries, %d bytes; bounds %d, %d", i+1, entries, held, tt.maxEntries, tt.maxBytes)
				}
				if entries == 0 {
					t.Fatalf("after %d results the cache is empty", i+1)
				}
			}
			// The most recent result is a hit: served with no store call.
			last := strconv.Itoa(tt.results - 1)
			if _, ok := c.cache.get(recordID(c.name, stepKey("step", last))); !ok {
				t.Fatal("the most recent result is not cached")
			}
		})
	}
	t.Run("result over the bound is not cached", func(t *testing.T) {
		g := New(NewMemoryStore(), WithLocalCacheLimits(16, mib))
		c := &g.c
		big := make([]byte, mib)
		if _, err := Do(t.Context(), g, "step", "big", func(context.Context) ([]byte, error) { return big, nil }); err != nil {
			t.Fatal(err)
		}
		if entries, held := c.cache.stats(); entries != 0 || held != 0 {
			t.Fatalf("cache holds %d entries, %d bytes; want none", entries, held)
		}
	})
}
