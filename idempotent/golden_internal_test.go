package idempotent

import (
	"encoding/json"
	"fmt"
	"testing"
)

// goldenEvents are ordinary events; their record ids were computed before key
// material stopped going through encoding/json, and must never change: a
// deployed table's records have to replay after an upgrade.
var goldenEvents = []struct{ path, event string }{
	{"", `{"b":[1,{"d":null,"c":"x"}],"a":1.50,"h":"<&>\u2028é"}`},
	{"", `"plain"`},
	{"orderId", `{"orderId":"o-1","amount":5}`},
	{"[customer, requestId]", `{"customer":"c\n\t\u0001","requestId":12345678901234567890}`},
	{"powertools_json(powertools_base64(data)).id", `{"data":"eyJpZCI6MX0="}`},
	{"powertools_base64_gzip(data)", `{"data":"H4sIAAAAAAAAA6tWSlSyMqwFAK+sG1YHAAAA"}`},
	// Key and payload material longer than 128 bytes, with escapes.
	{"order", `{"order":{"id":"o-1","lines":[{"sku":"SKU-10001","name":"espresso beans <1kg> & more","qty":2},{"sku":"SKU-20002","name":"oat milk \u2028","qty":1}],"note":"\u00e9\t"},"x":1}`},
}

func goldenIDs(t *testing.T) []string {
	var ids []string
	for _, g := range goldenEvents {
		var opts []WrapOption
		if g.path != "" {
			opts = append(opts, WithKeyPath(g.path), WithPayloadPath(g.path))
		} else {
			opts = append(opts, WithPayloadPath("@"))
		}
		w := &wrapConfig{}
		for _, o := range opts {
			o.applyWrap(w)
		}
		w.keyPath = compilePath(w, nil, "WithKeyPath", w.keyExpr)
		w.payloadPath = compilePath(w, nil, "WithPayloadPath", w.payloadExpr)
		kf, err := eventKeyFunc[json.RawMessage](w)
		if err != nil {
			t.Fatal(err)
		}
		key, fp, err := kf(json.RawMessage(g.event))
		if err != nil {
			t.Fatalf("%s: %v", g.event, err)
		}
		ids = append(ids, fmt.Sprintf("%s %s", recordID("fn", key), hashHex(fp)))
	}
	return ids
}

func TestGoldenRecordIDs(t *testing.T) {
	want := []string{
		"fn#2805607b2e289853d680942f02918d4dc21948854f5782d6268935543ee0ed7f 2805607b2e289853d680942f02918d4dc21948854f5782d6268935543ee0ed7f",
		"fn#945603a8f587786b463c3f94fce115c0fae88fac2728cc96ddf5981cf7f61741 945603a8f587786b463c3f94fce115c0fae88fac2728cc96ddf5981cf7f61741",
		"fn#00d5c8b71f851bbe47626a189b20fb19c11753e244bb658095c370ba3798f85c 00d5c8b71f851bbe47626a189b20fb19c11753e244bb658095c370ba3798f85c",
		"fn#4ebddf01a56320db39ab6101b9ad9e7679d2bb262c24a35dec5d816f48230f31 4ebddf01a56320db39ab6101b9ad9e7679d2bb262c24a35dec5d816f48230f31",
		"fn#6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b",
		"fn#3dc4eef510cec9eda1ca361042e8152bd62c44288af2d9cc465cc217c381facd 3dc4eef510cec9eda1ca361042e8152bd62c44288af2d9cc465cc217c381facd",
		"fn#3a2f0b81a752375755a70653b5231b65666e1d3c08a41add7f824c5a5b887eed 3a2f0b81a752375755a70653b5231b65666e1d3c08a41add7f824c5a5b887eed",
	}
	got := goldenIDs(t)
	for i, g := range got {
		if i < len(want) && g != want[i] {
			t.Errorf("%s: record id and fingerprint %s, was %s", goldenEvents[i].event, g, want[i])
		}
	}
	if len(want) != len(got) {
		t.Errorf("%d golden ids, %d events", len(want), len(got))
	}
}

// goldenStruct is a Go event type: its key material goes through its JSON
// form (json.Marshal's bytes, HTML characters escaped).
type goldenStruct struct {
	ID    string            `json:"id"`
	Note  string            `json:"note"`
	Tags  map[string]string `json:"tags"`
	Bytes []byte            `json:"bytes"`
}

func TestGoldenStructRecordIDs(t *testing.T) {
	event := goldenStruct{ID: "o-1", Note: "<b>&\u2028é\x7f", Tags: map[string]string{"z": "1", "a": "2"}, Bytes: []byte{0, 0xff}}
	want := []string{
		"fn#19c9ea08b55cd2bc5ec8ec267376b03d67576b21d3d6cdd403fc0b0a37e93b01 19c9ea08b55cd2bc5ec8ec267376b03d67576b21d3d6cdd403fc0b0a37e93b01",
		"fn#eab0e94cc19687af2be26acad644bd91ff25ab36973c674e99d27b60f71bf99e 19c9ea08b55cd2bc5ec8ec267376b03d67576b21d3d6cdd403fc0b0a37e93b01",
	}
	var got []string
	for _, path := range []string{"", "[id, note]"} {
		w := &wrapConfig{}
		if path != "" {
			WithKeyPath(path).applyWrap(w)
		}
		WithPayloadPath("@").applyWrap(w)
		w.keyPath = compilePath(w, nil, "WithKeyPath", w.keyExpr)
		w.payloadPath = compilePath(w, nil, "WithPayloadPath", w.payloadExpr)
		kf, err := eventKeyFunc[goldenStruct](w)
		if err != nil {
			t.Fatal(err)
		}
		key, fp, err := kf(event)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s", recordID("fn", key), hashHex(fp)))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record id and fingerprint %s, was %s", got[i], want[i])
		}
	}
}
