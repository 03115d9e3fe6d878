package sqsbatch

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
)

// Key material prefixes: one per kind of key, so that a message id, a body
// value, an attribute value and a deduplication id that happen to be equal
// never share a record.
const (
	prefixMessageID  = "sqs-message-id:"
	prefixBody       = "body:"
	prefixAttribute  = "sqs-message-attribute:"
	prefixDedup      = "sqs-deduplication-id:"
	prefixKinesisID  = "kinesis-event-id:"
	prefixDynamoDBID = "dynamodb-event-id:"
)

// SQS attribute names (events.SQSMessage.Attributes) of FIFO queues.
const (
	attrMessageGroupID = "MessageGroupId"
	attrDedupID        = "MessageDeduplicationId"
)

// noKey wraps idempotent.ErrNoKey with what is missing.
func noKey(id, format string, args ...any) error {
	return fmt.Errorf("%w: record %s: %s", idempotent.ErrNoKey, id, fmt.Sprintf(format, args...))
}

// sqsKey returns the key material of an SQS message.
func (c *config) sqsKey(m *events.SQSMessage, fifo bool) (string, error) {
	switch c.key {
	case keyBody:
		return c.bodyKey(m.MessageId, []byte(m.Body))
	case keyAttribute:
		a, ok := m.MessageAttributes[c.attribute]
		if !ok {
			return "", noKey(m.MessageId, "no message attribute %q", c.attribute)
		}
		var v []any
		switch {
		case a.StringValue != nil && *a.StringValue != "":
			v = []any{c.attribute, "S", *a.StringValue}
		case len(a.BinaryValue) > 0:
			v = []any{c.attribute, "B", base64.StdEncoding.EncodeToString(a.BinaryValue)}
		default:
			return "", noKey(m.MessageId, "message attribute %q is empty", c.attribute)
		}
		return prefixAttribute + mustJSON(v), nil
	case keyDedup:
		d := m.Attributes[attrDedupID]
		if !fifo || d == "" {
			return "", noKey(m.MessageId, "no deduplication id (FIFO queues only)")
		}
		return prefixDedup + mustJSON([]string{m.EventSourceARN, m.Attributes[attrMessageGroupID], d}), nil
	}
	if m.MessageId == "" {
		return "", noKey(m.MessageId, "empty messageId")
	}
	return prefixMessageID + m.MessageId, nil
}

// bodyKey evaluates the body key expression on a JSON body.
func (c *config) bodyKey(id string, body []byte) (key string, err error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		return "", noKey(id, "body is not JSON: %v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return "", noKey(id, "body is not JSON: data after the first value")
	}
	defer func() {
		// go-jmespath has panicked on unusual documents before; a bad body
		// must fail its record, not the process.
		if v := recover(); v != nil {
			key, err = "", noKey(id, "body key: JMESPath panicked: %v", v)
		}
	}()
	v, err := c.bodyPath.Search(doc)
	if err != nil {
		return "", noKey(id, "body key: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", noKey(id, "body key: %v", err)
	}
	switch string(b) {
	case "null", `""`, "[]", "{}":
		return "", noKey(id, "body key yields %s", b)
	}
	return prefixBody + string(b), nil
}

// mustJSON encodes strings and string slices, which cannot fail.
func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
