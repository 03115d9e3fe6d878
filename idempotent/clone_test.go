package idempotent

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

type cloneInner struct {
	Tags []string
	Attr map[string][]int
}

type cloneOuter struct {
	ID     string
	N      int
	When   time.Time
	Inner  cloneInner
	Ptr    *cloneInner
	List   []cloneInner
	Fixed  [2][]byte
	hidden int
}

type cloneTree struct {
	Name     string
	Children []*cloneTree
}

func TestCloneFor(t *testing.T) {
	t.Run("deep copy shares no memory", func(t *testing.T) {
		orig := cloneOuter{ID: "a", N: 1, When: time.Unix(1, 0), Inner: cloneInner{Tags: []string{"x"}, Attr: map[string][]int{"k": {1}}},
			Ptr: &cloneInner{Tags: []string{"p"}}, List: []cloneInner{{Tags: []string{"l"}}}, Fixed: [2][]byte{{1}, {2}}, hidden: 3}
		cp, ok := cloneFor(orig)
		if !ok || !reflect.DeepEqual(cp, orig) {
			t.Fatalf("cloneFor = %+v, %v; want an equal copy", cp, ok)
		}
		cp.Inner.Tags[0] = "changed"
		cp.Inner.Attr["k"][0] = 9
		cp.Ptr.Tags[0] = "changed"
		cp.List[0].Tags[0] = "changed"
		cp.Fixed[0][0] = 9
		if orig.Inner.Tags[0] != "x" || orig.Inner.Attr["k"][0] != 1 || orig.Ptr.Tags[0] != "p" || orig.List[0].Tags[0] != "l" || orig.Fixed[0][0] != 1 {
			t.Fatalf("changing the copy changed the original: %+v", orig)
		}
	})
	t.Run("recursive type", func(t *testing.T) {
		orig := &cloneTree{Name: "root", Children: []*cloneTree{{Name: "leaf"}}}
		cp, ok := cloneFor(orig)
		if !ok || cp == orig || cp.Children[0] == orig.Children[0] || cp.Children[0].Name != "leaf" {
			t.Fatalf("cloneFor = %+v, %v", cp, ok)
		}
	})
	tests := []struct {
		name string
		ok   bool
		kind copyKind
		typ  reflect.Type
	}{
		{"string", true, copyValue, reflect.TypeFor[string]()},
		{"struct of values", true, copyValue, reflect.TypeFor[struct{ A, B int }]()},
		{"time.Time (shares its immutable Location)", true, copyValue, reflect.TypeFor[struct{ T time.Time }]()},
		{"unexported slice", false, copyNone, reflect.TypeFor[struct{ a []int }]()},
		{"map with pointer keys", false, copyNone, reflect.TypeFor[map[*int]int]()},
		{"interface", false, copyNone, reflect.TypeFor[any]()},
		{"map of any", false, copyNone, reflect.TypeFor[map[string]any]()},
		{"json.Number", true, copyValue, reflect.TypeFor[json.Number]()},
		{"func", false, copyNone, reflect.TypeFor[func()]()},
		{"slice of structs", true, copyDeep, reflect.TypeFor[[]cloneInner]()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := kindOf(tt.typ); got != tt.kind {
				t.Fatalf("kindOf(%v) = %d, want %d", tt.typ, got, tt.kind)
			}
		})
	}
}

// TestCacheHitsAreIndependent mutates what cache hits return: no later
// caller sees it.
func TestCacheHitsAreIndependent(t *testing.T) {
	store := NewMemoryStore()
	cache := WithLocalCache(8)
	run := func() cloneInner {
		t.Helper()
		out, err := Do(t.Context(), store, "k", func(_ context.Context) (cloneInner, error) {
			return cloneInner{Tags: []string{"a", "b"}, Attr: map[string][]int{"k": {1}}}, nil
		}, cache)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := run() // runs, stores
	for i := range 4 {
		got := run() // hits: decoded, then copies
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("hit %d = %+v, want %+v", i, got, want)
		}
		got.Tags[0] = "changed"
		got.Attr["k"][0] = 9
		got.Attr["new"] = nil
	}
}
