// Package dynamocost measures what DynamoDB requests cost, at the HTTP
// boundary, the same way for any client in any language: calls per operation,
// write units and read units.
//
// Write units follow DynamoDB's billing: one unit per started KB (1,024
// bytes) of the item written, at least one per write request; item size is
// the sum of attribute name lengths and value sizes (ItemSize). A PutItem
// costs the size of its item; an UpdateItem the size of the item after the
// update; a DeleteItem the size of the item deleted; a conditional write
// whose condition fails the size of the existing item. The item sizes come
// from a shadow copy the Meter keeps of every item written through it (it
// applies PutItem items, DeleteItems and UpdateItems with plain SET and
// REMOVE clauses), so measuring adds no request to the server. Items written
// around the Meter count as absent.
package dynamocost

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/idemlambda/idemlambda/internal/amztarget"
)

// Stats are a Meter's counts.
type Stats struct {
	// Calls counts requests per operation ("PutItem", "GetItem", ...): the
	// first attempts, as the client's code asks for them.
	Calls map[string]int
	// Retries counts the further attempts the SDKs' retryers sent (they mark
	// each attempt in the amz-sdk-request header); they are not in Calls.
	Retries int
	// WriteUnits is the write units of all write requests.
	WriteUnits int
	// ReadUnits is the read units of all GetItem and BatchGetItem requests:
	// per item read, one unit per started 4 KB (at least one, also for an
	// item that is absent) for a strongly consistent read, half of that for
	// an eventually consistent one (ReadUnits).
	ReadUnits float64
	// ItemBytes is the size of the items written (PutItem items and the
	// items after UpdateItems that succeeded).
	ItemBytes int
}

// Total is the number of calls of all operations.
func (s Stats) Total() int {
	n := 0
	for _, v := range s.Calls {
		n += v
	}
	return n
}

// Meter is an http.RoundTripper that counts the DynamoDB requests passing
// through it to Next (http.DefaultTransport when nil). It is safe for
// concurrent use. Tables must have a key schema of "S" attributes; the Meter
// learns each table's key attributes from the first PutItem's DescribeTable
// it sends itself (not counted) — or from SetKey.
type Meter struct {
	Next http.RoundTripper

	mu     sync.Mutex
	stats  Stats
	keys   map[string][]string                              // table -> key attribute names
	shadow map[string]map[string]map[string]json.RawMessage // table -> key -> item
}

// SetKey tells the Meter the key attribute names of table.
func (m *Meter) SetKey(table string, attrs ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == nil {
		m.keys = make(map[string][]string)
	}
	m.keys[table] = attrs
}

// Stats returns a copy of the counts so far.
func (m *Meter) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.Calls = make(map[string]int, len(m.stats.Calls))
	for k, v := range m.stats.Calls {
		s.Calls[k] = v
	}
	return s
}

// Reset sets the counts to zero (the shadow items stay).
func (m *Meter) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats = Stats{}
}

type request struct {
	TableName                 string
	Item, Key                 map[string]json.RawMessage
	UpdateExpression          string
	ExpressionAttributeNames  map[string]string
	ExpressionAttributeValues map[string]json.RawMessage
	ConsistentRead            bool
	RequestItems              map[string]struct {
		Keys           []map[string]json.RawMessage
		ConsistentRead bool
	}
}

// RoundTrip implements http.RoundTripper.
func (m *Meter) RoundTrip(req *http.Request) (*http.Response, error) {
	next := m.Next
	if next == nil {
		next = http.DefaultTransport
	}
	op, _ := amztarget.Op(req.Header)
	write := op == "PutItem" || op == "UpdateItem" || op == "DeleteItem"
	read := op == "GetItem" || op == "BatchGetItem"
	var in request
	if (write || read) && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		_ = json.Unmarshal(body, &in)
		if op == "PutItem" && in.Key == nil {
			keys, err := m.keyAttrs(req, next, in.TableName)
			if err != nil {
				return nil, err
			}
			in.Key = make(map[string]json.RawMessage, len(keys))
			for _, k := range keys {
				in.Key[k] = in.Item[k]
			}
		}
	}
	resp, err := next.RoundTrip(req)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stats.Calls == nil {
		m.stats.Calls = make(map[string]int)
	}
	if retry(req) {
		m.stats.Retries++
	} else {
		m.stats.Calls[op]++
	}
	if err == nil && read && resp.StatusCode == http.StatusOK {
		if op == "GetItem" {
			m.stats.ReadUnits += ReadUnits(ItemSize(m.item(in.TableName, in.Key)), in.ConsistentRead)
		}
		for table, ka := range in.RequestItems {
			for _, k := range ka.Keys {
				m.stats.ReadUnits += ReadUnits(ItemSize(m.item(table, k)), ka.ConsistentRead)
			}
		}
	}
	if err != nil || !write {
		return resp, err
	}
	ok := resp.StatusCode == http.StatusOK
	if !ok {
		// A failed condition costs the existing item; other errors cost
		// nothing (throttling, validation).
		body, rerr := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if rerr == nil && bytes.Contains(body, []byte("ConditionalCheckFailedException")) {
			m.stats.WriteUnits += Units(ItemSize(m.item(in.TableName, in.Key)))
		}
		return resp, nil
	}
	switch op {
	case "PutItem":
		size := ItemSize(in.Item)
		m.stats.WriteUnits += Units(max(size, ItemSize(m.item(in.TableName, in.Key))))
		m.stats.ItemBytes += size
		m.setItem(in.TableName, in.Key, in.Item)
	case "DeleteItem":
		m.stats.WriteUnits += Units(ItemSize(m.item(in.TableName, in.Key)))
		m.setItem(in.TableName, in.Key, nil)
	case "UpdateItem":
		before := m.item(in.TableName, in.Key)
		after := applyUpdate(before, in)
		size := ItemSize(after)
		m.stats.WriteUnits += Units(max(size, ItemSize(before)))
		m.stats.ItemBytes += size
		m.setItem(in.TableName, in.Key, after)
	}
	return resp, nil
}

// retry reports whether req is a second or later attempt of a call.
func retry(req *http.Request) bool {
	for _, part := range strings.Split(req.Header.Get("Amz-Sdk-Request"), ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "attempt="); ok {
			return v != "1"
		}
	}
	return false
}

func shadowKey(key map[string]json.RawMessage) string {
	b, _ := json.Marshal(key) // sorted keys: canonical
	return string(b)
}

func (m *Meter) item(table string, key map[string]json.RawMessage) map[string]json.RawMessage {
	return m.shadow[table][shadowKey(key)]
}

func (m *Meter) setItem(table string, key, item map[string]json.RawMessage) {
	if m.shadow == nil {
		m.shadow = make(map[string]map[string]map[string]json.RawMessage)
	}
	t := m.shadow[table]
	if t == nil {
		t = make(map[string]map[string]json.RawMessage)
		m.shadow[table] = t
	}
	if item == nil {
		delete(t, shadowKey(key))
		return
	}
	t[shadowKey(key)] = item
}

var clause = regexp.MustCompile(`(?i)\b(SET|REMOVE|ADD|DELETE)\b`)

// applyUpdate applies the SET and REMOVE clauses of an UpdateItem to a copy
// of item (SET path = :value only; anything else is ignored).
func applyUpdate(item map[string]json.RawMessage, in request) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(item)+4)
	for k, v := range item {
		out[k] = v
	}
	for k, v := range in.Key {
		out[k] = v
	}
	expr := in.UpdateExpression
	locs := clause.FindAllStringIndex(expr, -1)
	for i, loc := range locs {
		end := len(expr)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		kw := strings.ToUpper(expr[loc[0]:loc[1]])
		for _, part := range strings.Split(expr[loc[1]:end], ",") {
			name, value, _ := strings.Cut(part, "=")
			name = resolve(strings.TrimSpace(name), in.ExpressionAttributeNames)
			switch kw {
			case "SET":
				if v, ok := in.ExpressionAttributeValues[strings.TrimSpace(value)]; ok && name != "" {
					out[name] = v
				}
			case "REMOVE":
				delete(out, name)
			}
		}
	}
	return out
}

func resolve(name string, names map[string]string) string {
	if n, ok := names[name]; ok {
		return n
	}
	return name
}

// keyAttrs returns the key attribute names of table, asking the server once.
func (m *Meter) keyAttrs(orig *http.Request, next http.RoundTripper, table string) ([]string, error) {
	m.mu.Lock()
	keys, ok := m.keys[table]
	m.mu.Unlock()
	if ok {
		return keys, nil
	}
	b, _ := json.Marshal(map[string]string{"TableName": table})
	req, err := http.NewRequestWithContext(orig.Context(), http.MethodPost, orig.URL.String(), bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header = orig.Header.Clone()
	req.Header.Del("Content-Length")
	amztarget.Set(req.Header, "DescribeTable")
	resp, err := next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var desc struct {
		Table struct {
			KeySchema []struct{ AttributeName string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&desc); err != nil {
		return nil, err
	}
	for _, k := range desc.Table.KeySchema {
		keys = append(keys, k.AttributeName)
	}
	m.SetKey(table, keys...)
	return keys, nil
}

// Units is the write units of an item of size bytes: one per started KB, at
// least one.
func Units(size int) int {
	return max(1, (size+1023)/1024)
}

// ReadUnits is the read units of reading an item of size bytes: one per
// started 4 KB, at least one, when consistent; half as many when not.
func ReadUnits(size int, consistent bool) float64 {
	u := float64(max(1, (size+4095)/4096))
	if consistent {
		return u
	}
	return u / 2
}

// ItemSize is the DynamoDB size of an item in the JSON wire format: the
// lengths of the attribute names plus the sizes of the values (strings their
// UTF-8 bytes, binaries their raw bytes, numbers about one byte per two
// significant digits plus one, booleans and nulls one byte, maps and lists
// three bytes plus one per element plus their contents).
func ItemSize(item map[string]json.RawMessage) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(raw json.RawMessage) int {
	var av map[string]json.RawMessage
	if json.Unmarshal(raw, &av) != nil {
		return 0
	}
	for typ, v := range av {
		switch typ {
		case "S":
			var s string
			_ = json.Unmarshal(v, &s)
			return len(s)
		case "N":
			var s string
			_ = json.Unmarshal(v, &s)
			return numberSize(s)
		case "B":
			var s string
			_ = json.Unmarshal(v, &s)
			return base64.StdEncoding.DecodedLen(len(s)) - strings.Count(s, "=")
		case "BOOL", "NULL":
			return 1
		case "M":
			var m map[string]json.RawMessage
			_ = json.Unmarshal(v, &m)
			return 3 + len(m) + ItemSize(m)
		case "L":
			var l []json.RawMessage
			_ = json.Unmarshal(v, &l)
			n := 3 + len(l)
			for _, e := range l {
				n += valueSize(e)
			}
			return n
		case "SS", "NS", "BS":
			var l []string
			_ = json.Unmarshal(v, &l)
			n := 0
			for _, e := range l {
				switch typ {
				case "SS":
					n += len(e)
				case "NS":
					n += numberSize(e)
				default:
					n += base64.StdEncoding.DecodedLen(len(e)) - strings.Count(e, "=")
				}
			}
			return n
		}
	}
	return 0
}

func numberSize(s string) int {
	s = strings.TrimLeft(strings.NewReplacer("-", "", ".", "").Replace(s), "0")
	s = strings.TrimRight(s, "0")
	return (len(s)+1)/2 + 1
}
