package sqsbatch

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

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

// bodyKey evaluates the body key expression on a JSON body. A body the key
// cannot be read from (not JSON, the expression fails, or its result is
// missing) is an error: the record fails, contract §5.
func (c *config) bodyKey(id string, body []byte) (string, error) {
	k, err := c.bodyPath.Key(body)
	if err != nil {
		return "", fmt.Errorf("record %s: body key: %w", id, err)
	}
	if k == "" {
		return "", noKey(id, "body key %q yields nothing", c.bodyPath)
	}
	return prefixBody + k, nil
}

// mustJSON encodes strings and string slices, which cannot fail.
func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
