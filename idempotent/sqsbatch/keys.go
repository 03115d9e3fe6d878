package sqsbatch

import (
	"encoding/base64"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/keyjson"
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
		switch {
		case a.StringValue != nil && *a.StringValue != "":
			return prefixAttribute + jsonStrings(c.attribute, "S", *a.StringValue), nil
		case len(a.BinaryValue) > 0:
			return prefixAttribute + jsonStrings(c.attribute, "B", base64.StdEncoding.EncodeToString(a.BinaryValue)), nil
		}
		return "", noKey(m.MessageId, "message attribute %q is empty", c.attribute)
	case keyDedup:
		d := m.Attributes[attrDedupID]
		if !fifo || d == "" {
			return "", noKey(m.MessageId, "no deduplication id (FIFO queues only)")
		}
		return prefixDedup + jsonStrings(m.EventSourceARN, m.Attributes[attrMessageGroupID], d), nil
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

// jsonStrings writes ss as a JSON array of strings: json.Marshal's bytes for
// valid UTF-8, and each invalid byte as \xHH (keyjson.AppendString) instead
// of U+FFFD, so strings that differ only in invalid bytes stay different
// keys.
func jsonStrings(ss ...string) string {
	b := []byte{'['}
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = keyjson.AppendString(b, s)
	}
	return string(append(b, ']'))
}
