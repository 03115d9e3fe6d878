package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/idemlambda/idemlambda/idempotent"
)

// Scanner is the part of a go-redis client List needs besides Client.
// *redis.Client satisfies it. On a cluster client SCAN walks one node only,
// so List there sees only that node's records.
type Scanner interface {
	Scan(ctx context.Context, cursor uint64, match string, count int64) *redis.ScanCmd
}

var (
	_ idempotent.Lister  = (*Store)(nil)
	_ idempotent.Deleter = (*Store)(nil)
)

const (
	opList    = "list"
	opInspect = "inspect"
	opDelete  = "delete"
)

// globEscaper escapes SCAN MATCH's pattern characters.
var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)

// List implements idempotent.Lister with one SCAN of the keys of q.Name
// (MATCH KeyPrefix{name#*}, COUNT q.Limit) and one script run per key
// found. The cursor is SCAN's. Keys that are not records count as Foreign.
func (s *Store) List(ctx context.Context, q idempotent.ListQuery) (*idempotent.ListPage, error) {
	if q.Name == "" {
		return nil, &idempotent.ConfigError{Option: "ListQuery.Name", Err: errors.New("empty name")}
	}
	sc, ok := s.client.(Scanner)
	if !ok {
		return nil, &idempotent.ConfigError{Option: "redisstore.New", Err: fmt.Errorf("client %T has no Scan", s.client)}
	}
	var cursor uint64
	if q.Cursor != "" {
		c, err := strconv.ParseUint(q.Cursor, 10, 64)
		if err != nil {
			return nil, &idempotent.ConfigError{Option: "ListQuery.Cursor", Err: err}
		}
		cursor = c
	}
	count := int64(q.Limit)
	if count <= 0 {
		count = 100
	}
	match := globEscaper.Replace(s.opts.KeyPrefix+"{"+q.Name+"#") + "*}"
	// One SCAN step may match nothing while keys remain (it walks the whole
	// keyspace COUNT slots at a time): go on until the page has count keys
	// or the walk is done, so an empty page means there are no more.
	var keys []string
	next := cursor
	for {
		got, n, err := sc.Scan(ctx, next, match, count).Result()
		if err != nil {
			return nil, &idempotent.StoreError{Op: opList, RecordID: q.Name, Err: err}
		}
		keys, next = append(keys, got...), n
		if next == 0 || int64(len(keys)) >= count {
			break
		}
	}
	page := &idempotent.ListPage{Scanned: len(keys)}
	if next != 0 {
		page.Next = strconv.FormatUint(next, 10)
	}
	for _, k := range keys {
		id := strings.TrimSuffix(strings.TrimPrefix(k, s.opts.KeyPrefix+"{"), "}")
		info, err := s.Inspect(ctx, id)
		switch {
		case errors.Is(err, idempotent.ErrCorruptRecord):
			page.Foreign++
		case err != nil:
			return nil, err
		case info != nil: // nil: gone since SCAN saw it
			page.Records = append(page.Records, *info)
		}
	}
	return page, nil
}

// inspectScript returns the record and, for a legacy record, the stored
// size of its data: the record string, nil, {record array, size} or
// {0, type} for a foreign key.
var inspectScript = redis.NewScript(legacy + `
local k = KEYS[1]
local v = redis.pcall('GET', k)
if type(v) ~= 'table' then return v end
if not wrongtype(v) then return v end
local r = legacy(k)
if #r ~= 7 then return r end
return {r, redis.call('HSTRLEN', k, 'data')}
`)

// Inspect implements idempotent.Lister with one script run.
func (s *Store) Inspect(ctx context.Context, id string) (*idempotent.RecordInfo, error) {
	reply, err := inspectScript.Run(ctx, s.client, []string{s.Key(id)}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, &idempotent.StoreError{Op: opInspect, RecordID: id, Err: err}
	}
	stored := 0
	switch r := reply.(type) {
	case string:
		stored = len(r) - strings.IndexByte(r, '\n') - 1
	case []any:
		if len(r) != 2 {
			break
		}
		if inner, ok := r[0].([]any); ok {
			reply = inner
			n, _ := r[1].(int64)
			stored = int(n)
		}
	}
	rec, err := decodeReply(id, reply)
	if err != nil {
		return nil, err
	}
	rec.Data = nil
	return &idempotent.RecordInfo{Record: *rec, StoredBytes: stored}, nil
}

// deleteScript deletes the record if it is the one given.
//
//	ARGV[1] status letter (I, C)  ARGV[2] expiration (s)  ARGV[3] owner, escaped
//	ARGV[4] lease end (ms), or "" to not compare it
//	ARGV[5] status name (INPROGRESS, COMPLETED)  ARGV[6] owner ("" for none):
//	the same for a legacy record
//
// Reply: 1 deleted, 0 changed or gone.
var deleteScript = redis.NewScript(legacy + `
local k = KEYS[1]
local v = redis.pcall('GET', k)
if type(v) == 'string' then
  local st, exp, lease, owner = string.match(v, ` + header + `)
  if not st or st ~= ARGV[1] or exp ~= ARGV[2] or owner ~= ARGV[3] then return 0 end
  if ARGV[4] ~= '' and lease ~= ARGV[4] then return 0 end
  return redis.call('DEL', k)
end
if not v then return 0 end
if not wrongtype(v) then return v end
local r = legacy(k)
if #r ~= 7 then return 0 end
if r[1] ~= ARGV[5] or r[2] ~= ARGV[2] or (r[4] or '') ~= ARGV[6] then return 0 end
if ARGV[4] ~= '' and r[3] ~= ARGV[4] then return 0 end
return redis.call('DEL', k)
`)

// Delete implements idempotent.Deleter with one script run, conditional on
// the status, expiration, owner and (in progress) lease end of rec.
func (s *Store) Delete(ctx context.Context, rec idempotent.Record) error {
	lease, letter := "", string(statusDone)
	if rec.Status == idempotent.StatusInProgress {
		lease, letter = strconv.FormatInt(rec.LeaseExpiration.UnixMilli(), 10), string(statusIn)
	}
	n, err := deleteScript.Run(ctx, s.client, []string{s.Key(rec.ID)},
		letter, strconv.FormatInt(rec.Expiration.Unix(), 10), escape(rec.Owner), lease,
		string(rec.Status), rec.Owner).Int64()
	if err != nil {
		return &idempotent.StoreError{Op: opDelete, RecordID: rec.ID, Err: err}
	}
	if n != 1 {
		return &idempotent.RecordChangedError{RecordID: rec.ID}
	}
	return nil
}
