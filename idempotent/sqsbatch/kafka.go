package sqsbatch

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/internal/keyjson"
)

// prefixKafka is the key material prefix of the default Kafka key.
const prefixKafka = "kafka-record:"

// KafkaEventResponse is the partial batch response of a Kafka event source
// mapping (Amazon MSK or self-managed Apache Kafka) with
// FunctionResponseTypes ReportBatchItemFailures. It marshals to
//
//	{"batchItemFailures":[{"itemIdentifier":{"partition":"mytopic-0","offset":15}}]}
//
// An empty list tells Lambda that every record succeeded. aws-lambda-go has
// no type for it.
type KafkaEventResponse struct {
	BatchItemFailures []KafkaBatchItemFailure `json:"batchItemFailures"`
}

// KafkaBatchItemFailure is one failed record of a Kafka batch.
type KafkaBatchItemFailure struct {
	ItemIdentifier KafkaItemIdentifier `json:"itemIdentifier"`
}

// KafkaItemIdentifier names a Kafka record in a partial batch response:
// Partition is the record's key in the event's records map ("<topic>-<n>"),
// Offset its offset, a JSON number.
type KafkaItemIdentifier struct {
	Partition string `json:"partition"`
	Offset    int64  `json:"offset"`
}

// WrapKafka is Wrap for Kafka event source mappings (Amazon MSK and
// self-managed Apache Kafka): it runs fn at most once per record key and
// reports failed records by partition and offset (KafkaEventResponse).
//
// The default key is the record's event source ARN, topic, partition and
// offset, so a batch Lambda delivers again replays instead of running.
// WithBodyKey reads the key from the record's value after base64 decoding
// it (a value that is not valid base64 fails the record), so that a message
// the producer sent twice (two offsets) runs once. WithAttributeKey and
// WithDeduplicationKey are rejected.
//
// Order is kept per partition: the records of a partition run in offset
// order and, after the first failure, every later record of that partition
// is reported failed without running; other partitions go on. Partitions
// run one after the other, in the order of their records-map keys;
// WithConcurrency does not apply. A record whose key cannot be read, whose
// fn returns an error or panics, whose key is held by a running invocation,
// or whose store call fails is reported failed, never acknowledged.
func WrapKafka(g *idempotent.Guard, fn func(context.Context, events.KafkaRecord) error, opts ...Option) func(context.Context, events.KafkaEvent) (KafkaEventResponse, error) {
	p := newProcessor(g, fn, "kafka", []keyKind{keyDefault, keyBody}, opts)
	return func(ctx context.Context, event events.KafkaEvent) (KafkaEventResponse, error) {
		if p.err != nil {
			return KafkaEventResponse{}, p.err
		}
		parts := make([]string, 0, len(event.Records))
		n := 0
		for k, recs := range event.Records {
			parts = append(parts, k)
			n += len(recs)
		}
		slices.Sort(parts)
		items := make([]item[events.KafkaRecord], 0, n)
		ids := make([]KafkaItemIdentifier, 0, n)
		for _, part := range parts {
			recs := slices.Clone(event.Records[part])
			slices.SortStableFunc(recs, func(a, b events.KafkaRecord) int { return cmp.Compare(a.Offset, b.Offset) })
			for i := range recs {
				r := &recs[i]
				it := item[events.KafkaRecord]{rec: *r, ordered: true, group: part}
				it.id = part + "@" + strconv.FormatInt(r.Offset, 10)
				it.key, it.keyErr = p.c.kafkaKey(it.id, event.EventSourceARN, r)
				items = append(items, it)
				ids = append(ids, KafkaItemIdentifier{Partition: part, Offset: r.Offset})
			}
		}
		resp := KafkaEventResponse{BatchItemFailures: []KafkaBatchItemFailure{}}
		for i, f := range p.run(ctx, items) {
			if f {
				resp.BatchItemFailures = append(resp.BatchItemFailures, KafkaBatchItemFailure{ItemIdentifier: ids[i]})
			}
		}
		return resp, nil
	}
}

// kafkaKey returns the key material of a Kafka record.
func (c *config) kafkaKey(id, arn string, r *events.KafkaRecord) (string, error) {
	if c.key == keyBody {
		v, err := base64.StdEncoding.DecodeString(r.Value)
		if err != nil {
			return "", fmt.Errorf("%w: record %s: value is not base64: %v", idempotent.ErrNoKey, id, err)
		}
		return c.bodyKey(id, v)
	}
	if r.Topic == "" {
		return "", noKey(id, "empty topic")
	}
	b := []byte(prefixKafka + "[")
	b = keyjson.AppendString(b, arn)
	b = append(b, ',')
	b = keyjson.AppendString(b, r.Topic)
	b = append(b, ',')
	b = strconv.AppendInt(b, r.Partition, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, r.Offset, 10)
	return string(append(b, ']')), nil
}
