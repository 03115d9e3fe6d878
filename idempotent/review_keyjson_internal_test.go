package idempotent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

type reviewMarshaler struct{ V string }

func (m reviewMarshaler) MarshalJSON() ([]byte, error) {
	return []byte(` { "m" : "` + m.V + `" , "z":[1, 2] } `), nil
}

type reviewText struct{ V string }

func (m reviewText) MarshalText() ([]byte, error) { return []byte("<" + m.V + ">"), nil }

type reviewEvent struct {
	ID      string             `json:"id"`
	N       float64            `json:"n"`
	Big     int64              `json:"big"`
	HTML    string             `json:"html"`
	Raw     json.RawMessage    `json:"raw,omitempty"`
	M       reviewMarshaler    `json:"m"`
	T       reviewText         `json:"t"`
	Keys    map[reviewText]int `json:"keys"`
	Bytes   []byte             `json:"bytes"`
	When    time.Time          `json:"when"`
	Nested  *reviewEvent       `json:"nested,omitempty"`
	Omitted string             `json:"-"`
}

// TestReviewKeyJSONMatchesMarshal: the pooled encoder gives json.Marshal's
// bytes (what 9e567f6 hashed) for varied Go events — HTML characters, line
// separators, Marshalers with whitespace, TextMarshaler map keys, big
// numbers, RawMessage, events over the pool's 64 KB bound — and the key
// function run from many goroutines at once (the pool shared) gives each
// event the record id and fingerprint it gets alone.
func TestReviewKeyJSONMatchesMarshal(t *testing.T) {
	var events []reviewEvent
	for i := range 200 {
		e := reviewEvent{
			ID: fmt.Sprintf("o-%d", i), N: float64(i) / 7, Big: 1<<62 + int64(i),
			HTML: "<b>&amp;" + strings.Repeat("\u2028é", i%5), M: reviewMarshaler{V: fmt.Sprint(i)},
			T: reviewText{V: "t&" + fmt.Sprint(i)}, Keys: map[reviewText]int{{V: "b"}: i, {V: "a"}: -i},
			Bytes: bytes.Repeat([]byte{byte(i), 0xff}, i%7), When: time.Unix(int64(i)*1e6, int64(i)).UTC(),
		}
		if i%3 == 0 {
			e.Raw = json.RawMessage(`{"r": [ 1e3, -0.0, "x<y" ] }`)
		}
		if i%10 == 0 {
			e.Nested = &reviewEvent{ID: strings.Repeat("n", 70_000+i)} // beyond maxPooledKeyJSON
		}
		events = append(events, e)
	}
	for i, e := range events {
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		kj, err := encodeKeyJSON(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := kj.bytes(); !bytes.Equal(got, want) {
			t.Fatalf("event %d: encodeKeyJSON %q, json.Marshal %q", i, got, want)
		}
		kj.free()
	}

	w := &wrapConfig{}
	WithKeyPath("[id, m, keys, nested.id]").applyWrap(w)
	WithPayloadPath("@").applyWrap(w)
	w.keyPath = compilePath(w, nil, "WithKeyPath", w.keyExpr)
	w.payloadPath = compilePath(w, nil, "WithPayloadPath", w.payloadExpr)
	kf, err := eventKeyFunc[reviewEvent](w)
	if err != nil {
		t.Fatal(err)
	}
	alone := make([]string, len(events))
	for i, e := range events {
		key, fp, err := kf(e)
		if err != nil {
			t.Fatal(err)
		}
		alone[i] = recordID("fn", key) + " " + hashHex(fp)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(events))
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 3 {
				for j := range events {
					i := (j*7 + g + r) % len(events)
					key, fp, err := kf(events[i])
					if err != nil {
						errs <- err.Error()
						return
					}
					if got := recordID("fn", key) + " " + hashHex(fp); got != alone[i] {
						errs <- fmt.Sprintf("event %d: %s concurrently, %s alone", i, got, alone[i])
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
