package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent"
	"github.com/idemlambda/idemlambda/idempotent/dynamostore"
	"github.com/idemlambda/idemlambda/idempotent/redisstore"
)

// check reads every record with scanAll (scan or scanRedis) and evaluates
// the invariants over the history into r.
func (w *workload) check(ctx context.Context, scanAll func(context.Context) (map[string][]byte, int, int, int, error), r *Report) error {
	stored, stuck, records, unread, err := scanAll(ctx)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()

	r.Records = records
	r.Unread = unread
	r.Stuck = stuck
	r.Attempts = w.attempts
	r.Outcomes = w.outcomes
	r.Late = w.late
	r.Unexpected = w.unexpect
	r.Effects = len(w.ledger.Effects())
	r.Charges = w.ledger.Charges()
	r.PathOps = map[string]int{}
	callers := 0
	for _, op := range w.ops {
		r.Ops++
		r.PathOps[op.path.name()]++
		callers++
		if op.behavior != "" {
			r.Behaviors = inc(r.Behaviors, op.behavior)
		}
		if !op.answered.Load() {
			r.Lost++
			r.note("lost: %s has no final answer", op.key)
		}
		answers := w.answers[op.key]
		callers += countDups(answers)
		runs := map[string]bool{}
		for _, run := range w.ledger.Committed(op.key) {
			runs[run] = true
		}
		var first []byte
		for _, a := range answers {
			if first == nil {
				first = a.body
			} else if !bytes.Equal(a.body, first) {
				r.Divergent++
				r.note("divergent: %s answered %s to %s and %s to %s", op.key, answers[0].body, answers[0].caller, a.body, a.caller)
			}
			if run := runOf(a.body); run != "" {
				runs[run] = true
			}
		}
		if s, ok := stored[op.key]; ok {
			if first != nil && op.path.name() != "sqs" && !bytes.Equal(s, first) {
				r.Divergent++
				r.note("divergent: %s answered %s, the table holds %s", op.key, first, s)
			}
			if run := runOf(s); run != "" {
				runs[run] = true
			}
		}
		if len(runs) > 1 {
			r.Duplicates += len(runs) - 1
			r.note("duplicate: %s completed %d times: %v", op.key, len(runs), sortedKeys(runs))
		}
	}
	r.Retries = r.Attempts - callers
	return nil
}

func countDups(answers []answer) int {
	seen := map[string]bool{}
	for _, a := range answers {
		if strings.HasSuffix(a.caller, "-dup") {
			seen[a.caller] = true
		}
	}
	return len(seen)
}

// runOf is the run named in a stored or answered Payment, or "".
func runOf(body []byte) string {
	var p Payment
	if json.Unmarshal(body, &p) != nil {
		return ""
	}
	return p.Run
}

// scan reads every record through the store (so compressed and chunked data
// decode as on a replay): the stored answer of completed ones, by the key in
// their Payment — the HTTP path stores the whole response, whose body is the
// Payment — and the number still in progress. Chunk items belong to their
// record and are not counted. Completed records without a Payment (the SQS
// path stores an acknowledgement) are counted in unread.
func scan(ctx context.Context, client *dynamodb.Client, table string) (stored map[string][]byte, stuck, records, unread int, err error) {
	stored = make(map[string][]byte)
	store := dynamostore.New(client, table)
	p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, 0, 0, 0, fmt.Errorf("chaos: scan %s: %w", table, err)
		}
		for _, item := range page.Items {
			id, _ := item[dynamostore.DefaultKeyAttr].(*types.AttributeValueMemberS)
			st, _ := item[dynamostore.DefaultStatusAttr].(*types.AttributeValueMemberS)
			if st == nil && id != nil && strings.Contains(id.Value, "#chunk#") {
				continue
			}
			records++
			if st == nil || st.Value != string(idempotent.StatusCompleted) || id == nil {
				stuck++
				continue
			}
			rec, err := store.Get(ctx, id.Value)
			if err != nil {
				return nil, 0, 0, 0, fmt.Errorf("chaos: read record %s: %w", id.Value, err)
			}
			if rec == nil {
				continue // expired and removed since the scan read it
			}
			file(rec, stored, &unread)
		}
	}
	return stored, stuck, records, unread, nil
}

// file files the Payment of completed record rec in stored by the
// Payment's key, or counts the record in unread.
func file(rec *idempotent.Record, stored map[string][]byte, unread *int) {
	body := rec.Data
	var resp events.APIGatewayV2HTTPResponse
	if json.Unmarshal(body, &resp) == nil && resp.StatusCode != 0 {
		body = []byte(resp.Body)
	}
	var pay Payment
	if json.Unmarshal(body, &pay) == nil && pay.Key != "" {
		stored[pay.Key] = body
	} else {
		*unread++
	}
}

// scanRedis is scan on Redis: it lists the keys under prefix (SCAN, from
// the server directly, not through the fault proxy) and reads each record
// through a redisstore.Store, counting those not completed as stuck.
func scanRedis(ctx context.Context, client *redis.Client, prefix string) (stored map[string][]byte, stuck, records, unread int, err error) {
	stored = make(map[string][]byte)
	store := redisstore.New(client, redisstore.WithKeyPrefix(prefix))
	it := client.Scan(ctx, 0, redisGlob(prefix)+"*", 512).Iterator()
	for it.Next(ctx) {
		k := it.Val()
		id, ok := strings.CutPrefix(k, prefix+"{")
		if !ok || !strings.HasSuffix(id, "}") {
			return nil, 0, 0, 0, fmt.Errorf("chaos: key %q under %q is not a record key", k, prefix)
		}
		id = strings.TrimSuffix(id, "}")
		rec, err := store.Get(ctx, id)
		if err != nil {
			return nil, 0, 0, 0, fmt.Errorf("chaos: read record %s: %w", id, err)
		}
		if rec == nil {
			continue // expired since SCAN listed it
		}
		records++
		if rec.Status != idempotent.StatusCompleted {
			stuck++
			continue
		}
		file(rec, stored, &unread)
	}
	if err := it.Err(); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("chaos: scan keys %s*: %w", prefix, err)
	}
	return stored, stuck, records, unread, nil
}

// redisGlob escapes the glob characters of s for SCAN MATCH.
func redisGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func inc(m map[string]int, k string) map[string]int {
	if m == nil {
		m = make(map[string]int)
	}
	m[k]++
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
