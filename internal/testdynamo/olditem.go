package testdynamo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/idemlambda/idemlambda/internal/amztarget"
)

// oldItemTransport adds the existing item to the ConditionalCheckFailed
// answers of writes that ask for it with ALL_OLD, as real DynamoDB does and
// the local server does not. It reads the item with a consistent GetItem
// right after the failed write; that is not atomic with it, but the local
// server gives no better, and a record that vanished in between is answered
// without an item, which callers must handle anyway.
type oldItemTransport struct {
	next http.RoundTripper

	mu      sync.Mutex
	schemas map[string][]string // table -> key attribute names
}

func (t *oldItemTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	op, _ := amztarget.Op(req.Header)
	if (op != "PutItem" && op != "UpdateItem" && op != "DeleteItem") || req.Body == nil {
		return t.next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	var in struct {
		TableName                           string
		Item, Key                           map[string]json.RawMessage
		ReturnValuesOnConditionCheckFailure string
	}
	if err := json.Unmarshal(body, &in); err != nil || in.ReturnValuesOnConditionCheckFailure != "ALL_OLD" {
		return t.next.RoundTrip(req)
	}

	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		return resp, err
	}
	respBody, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	var failure map[string]json.RawMessage
	if json.Unmarshal(respBody, &failure) != nil {
		return resp, nil
	}
	var typ string
	_ = json.Unmarshal(failure["__type"], &typ)
	if !strings.HasSuffix(typ, "ConditionalCheckFailedException") {
		return resp, nil
	}

	key := in.Key
	if op == "PutItem" {
		names, err := t.keySchema(req, in.TableName)
		if err != nil {
			return nil, err
		}
		key = make(map[string]json.RawMessage, len(names))
		for _, n := range names {
			key[n] = in.Item[n]
		}
	}
	var got struct{ Item json.RawMessage }
	if err := t.call(req, "GetItem", map[string]any{"TableName": in.TableName, "Key": key, "ConsistentRead": true}, &got); err != nil {
		return nil, err
	}
	if len(got.Item) == 0 {
		return resp, nil
	}
	failure["Item"] = got.Item
	newBody, err := json.Marshal(failure)
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(newBody))
	resp.ContentLength = int64(len(newBody))
	resp.Header.Set("Content-Length", strconv.Itoa(len(newBody)))
	resp.Header.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(newBody)), 10))
	return resp, nil
}

// keySchema returns the key attribute names of table, asking the server once.
func (t *oldItemTransport) keySchema(req *http.Request, table string) ([]string, error) {
	t.mu.Lock()
	names, ok := t.schemas[table]
	t.mu.Unlock()
	if ok {
		return names, nil
	}
	var desc struct {
		Table struct {
			KeySchema []struct{ AttributeName string }
		}
	}
	if err := t.call(req, "DescribeTable", map[string]any{"TableName": table}, &desc); err != nil {
		return nil, err
	}
	for _, k := range desc.Table.KeySchema {
		names = append(names, k.AttributeName)
	}
	t.mu.Lock()
	if t.schemas == nil {
		t.schemas = make(map[string][]string)
	}
	t.schemas[table] = names
	t.mu.Unlock()
	return names, nil
}

// call sends op to the server of orig, reusing its headers: the local
// server checks that requests are signed, not the signature.
func (t *oldItemTransport) call(orig *http.Request, op string, payload, out any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	ctx := orig.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, orig.URL.String(), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header = orig.Header.Clone()
	req.Header.Del("Content-Length")
	amztarget.Set(req.Header, op)
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("testdynamo: %s for the ALL_OLD emulation: %s: %s", op, resp.Status, rb)
	}
	return json.Unmarshal(rb, out)
}
