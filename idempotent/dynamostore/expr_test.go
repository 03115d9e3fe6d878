package dynamostore

import (
	"maps"
	"regexp"
	"strings"
	"testing"
)

func TestBareName(t *testing.T) {
	tests := []struct {
		attr string
		want bool
	}{
		{"id", true},
		{"expiration", true},
		{"in_progress_expiration", true},
		{"data_format", true},
		{"data_chunks", true},
		{"validation", true},
		{"pk", true},
		{"sk", true},
		{"Lease2", true},
		{"status", false}, // reserved, in any case
		{"STATUS", false},
		{"Data", false},
		{"owner", false},
		{"ttl", false},
		{"zone", false},
		{"abort", false},
		{"", false},
		{"_x", false},
		{"1x", false},
		{"a.b", false},
		{"a b", false},
		{"a-b", false},
		{"a#b", false},
		{"a:b", false},
		{"é", false},
	}
	for _, tt := range tests {
		if got := bareName(tt.attr); got != tt.want {
			t.Errorf("bareName(%q) = %t, want %t", tt.attr, got, tt.want)
		}
	}
}

func TestReservedWords(t *testing.T) {
	words := strings.Fields(reservedWords)
	if len(words) != 573 {
		t.Fatalf("%d reserved words, want the 573 of the DynamoDB documentation", len(words))
	}
	longest := 0
	for i, w := range words {
		if i > 0 && words[i-1] >= w {
			t.Errorf("reserved words not sorted or repeated at %q", w)
		}
		if !reserved(strings.ToLower(w)) {
			t.Errorf("reserved(%q) = false", strings.ToLower(w))
		}
		longest = max(longest, len(w))
	}
	if longest != maxReservedWordLen {
		t.Errorf("longest reserved word has %d letters, maxReservedWordLen is %d", longest, maxReservedWordLen)
	}
	for _, w := range []string{"TATUS", "STATU", "S", "ABORT ABSOLUTE", "id", "validation"} {
		if reserved(w) {
			t.Errorf("reserved(%q) = true", w)
		}
	}
}

func TestExprNames(t *testing.T) {
	var n exprNames
	if n.names() != nil {
		t.Fatal("an expression without aliases has names")
	}
	got := []string{n.ref("id"), n.ref("status"), n.ref("owner"), n.ref("status"), n.ref("expiration")}
	if want := []string{"id", "#a", "#b", "#a", "expiration"}; !slicesEqual(got, want) {
		t.Fatalf("refs = %q, want %q", got, want)
	}
	if want := map[string]string{"#a": "status", "#b": "owner"}; !maps.Equal(n.names(), want) {
		t.Fatalf("names = %v, want %v", n.names(), want)
	}

	all := exprNames{all: true}
	got = []string{all.ref("id"), all.ref("status"), all.ref("id"), all.ref("expiration")}
	if want := []string{"#a", "#b", "#a", "#c"}; !slicesEqual(got, want) {
		t.Fatalf("refs with all = %q, want %q", got, want)
	}
	if want := map[string]string{"#a": "id", "#b": "status", "#c": "expiration"}; !maps.Equal(all.names(), want) {
		t.Fatalf("names with all = %v, want %v", all.names(), want)
	}
}

// TestExpressionsNameEveryAttribute checks New's expressions for every
// attribute layout: each alias is used, each used alias is listed, and each
// attribute appears (bare or aliased) where the contract needs it.
func TestExpressionsNameEveryAttribute(t *testing.T) {
	layouts := map[string]func(*Options){
		"defaults": func(*Options) {},
		"all aliased": func(o *Options) {
			o.KeyAttr, o.StatusAttr, o.ExpirationAttr, o.LeaseAttr = "Key", "State.now", "TTL", "lease until"
			o.OwnerAttr, o.DataAttr, o.DataFormatAttr, o.ChunksAttr = ":owner", "#result", "_format", "data-chunks"
		},
	}
	for name, fn := range layouts {
		t.Run(name, func(t *testing.T) {
			s := New(nil, "t", fn)
			o := s.opts
			check := func(what, expr string, names map[string]string, attrs ...string) {
				t.Helper()
				resolved := expr
				for alias, attr := range names {
					if !strings.Contains(expr, alias) {
						t.Errorf("%s: alias %s unused in %q", what, alias, expr)
					}
					resolved = strings.ReplaceAll(resolved, alias, "<"+attr+">")
				}
				if unresolved.MatchString(resolved) {
					t.Errorf("%s: unresolved alias in %q", what, resolved)
				}
				for _, a := range attrs {
					if !strings.Contains(resolved, "<"+a+">") && !strings.Contains(" "+resolved+" ", " "+a+" ") &&
						!strings.Contains(resolved, "("+a+")") && !strings.Contains(resolved, " "+a+",") {
						t.Errorf("%s: attribute %q missing from %q", what, a, resolved)
					}
				}
			}
			check("acquire", *s.acquireCond, s.acquireNames, o.idAttr(), o.ExpirationAttr, o.StatusAttr, o.LeaseAttr)
			for i, c := range s.complete {
				data := o.DataAttr
				if i&shapeChunked != 0 {
					data = o.ChunksAttr
				}
				// The names serve both expressions of the request.
				check("complete", *c.cond+" | "+*c.upd, c.names, o.StatusAttr, o.OwnerAttr, o.ExpirationAttr, o.LeaseAttr, data)
			}
			check("release", *s.releaseCond, s.releaseNames, o.OwnerAttr, o.StatusAttr)
			check("completedBy", *s.completedByProj, s.completedByNames, o.StatusAttr, o.OwnerAttr)
		})
	}
}

// unresolved matches an alias left in a resolved expression.
var unresolved = regexp.MustCompile(`#[a-z]\b`)

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
