package idempotent

import (
	"reflect"
	"sync"
	"time"
)

// The local cache keeps, beside a record's stored bytes, the result decoded
// from them, and answers a hit with a deep copy of that value instead of
// decoding JSON again (for a 1 KB struct, a copy costs a tenth of a decode).
// A copy is made only for types whose every part it can copy — structs,
// arrays, slices, maps, pointers and scalars, with no interface, channel,
// function or unsafe pointer, and no unexported field that refers to
// memory — so no caller can reach memory another caller holds. Other types
// are decoded from the bytes on every hit, as before.

// copyKind is what a type needs to be copied.
type copyKind uint8

const (
	copyNone  copyKind = iota // cannot be copied safely: decode instead
	copyValue                 // plain value: assignment copies it
	copyDeep                  // refers to memory: copy that too
)

var (
	copyKinds sync.Map // reflect.Type -> copyKind
	timeType  = reflect.TypeFor[time.Time]()
)

func kindOf(t reflect.Type) copyKind {
	if k, ok := copyKinds.Load(t); ok {
		return k.(copyKind)
	}
	k := analyse(t, map[reflect.Type]bool{})
	copyKinds.Store(t, k)
	return k
}

// analyse classifies t; seen breaks the recursion of recursive types (JSON
// decoding never makes cycles, so a recursive type's values are trees).
func analyse(t reflect.Type, seen map[reflect.Type]bool) copyKind {
	if seen[t] {
		return copyDeep
	}
	if t == timeType {
		return copyValue // its *Location is immutable and meant to be shared
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128, reflect.String:
		return copyValue
	case reflect.Array:
		return analyse(t.Elem(), seen)
	case reflect.Slice, reflect.Pointer:
		seen[t] = true
		defer delete(seen, t)
		if analyse(t.Elem(), seen) == copyNone {
			return copyNone
		}
		return copyDeep
	case reflect.Map:
		seen[t] = true
		defer delete(seen, t)
		if analyse(t.Key(), seen) != copyValue || analyse(t.Elem(), seen) == copyNone {
			return copyNone
		}
		return copyDeep
	case reflect.Struct:
		k := copyValue
		for i := range t.NumField() {
			f := t.Field(i)
			fk := analyse(f.Type, seen)
			if fk == copyNone || (fk == copyDeep && !f.IsExported()) {
				return copyNone
			}
			k = max(k, fk)
		}
		return k
	default: // Interface, Chan, Func, UnsafePointer
		return copyNone
	}
}

// cloneFor returns a deep copy of v and true, or false when T cannot be
// copied safely.
func cloneFor[T any](v T) (T, bool) {
	switch kindOf(reflect.TypeFor[T]()) {
	case copyValue:
		return v, true
	case copyDeep:
		rv := reflect.ValueOf(&v).Elem()
		deepen(rv)
		return v, true
	}
	return v, false
}

// deepen replaces every reference in the settable value v by a reference to
// a copy.
func deepen(v reflect.Value) {
	switch v.Kind() {
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		n := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(n, v)
		if kindOf(v.Type().Elem()) == copyDeep {
			for i := range n.Len() {
				deepen(n.Index(i))
			}
		}
		v.Set(n)
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		n := reflect.New(v.Type().Elem())
		n.Elem().Set(v.Elem())
		deepen(n.Elem())
		v.Set(n)
	case reflect.Map:
		if v.IsNil() {
			return
		}
		n := reflect.MakeMapWithSize(v.Type(), v.Len())
		deep := kindOf(v.Type().Elem()) == copyDeep
		it := v.MapRange()
		for it.Next() {
			e := it.Value()
			if deep {
				c := reflect.New(e.Type()).Elem()
				c.Set(e)
				deepen(c)
				e = c
			}
			n.SetMapIndex(it.Key(), e)
		}
		v.Set(n)
	case reflect.Array:
		if kindOf(v.Type().Elem()) == copyDeep {
			for i := range v.Len() {
				deepen(v.Index(i))
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); kindOf(f.Type()) == copyDeep {
				deepen(f)
			}
		}
	}
}
