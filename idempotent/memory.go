package idempotent

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemoryStore is a Store in process memory: for unit tests, examples and
// single-process use. It is safe for concurrent use and follows the same
// contract as the DynamoDB store (the store contract suite runs against
// both). Expired records are swept as new ones are written.
type MemoryStore struct {
	mu        sync.Mutex
	records   map[string]Record
	nextSweep int // sweep expired records once len(records) reaches it
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{records: make(map[string]Record)}
}

var (
	_ Store      = (*MemoryStore)(nil)
	_ DataCopier = (*MemoryStore)(nil)
)

// CopiesData implements DataCopier: the store keeps copies of what it is
// given and returns copies of what it keeps.
func (m *MemoryStore) CopiesData() bool { return true }

// minSweep is the size under which the store never sweeps. Sweeps happen
// when the map has doubled since the last one, so their cost is amortised
// to O(1) per write.
const minSweep = 1024

// Acquire implements Store.
func (m *MemoryStore) Acquire(_ context.Context, rec Record, now time.Time) (*Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.records == nil {
		m.records = make(map[string]Record)
	}
	old, ok := m.records[rec.ID]
	if ok && !old.Free(now) {
		if rec.Owner != "" && old.Owner == rec.Owner && old.Status == StatusInProgress {
			return nil, true, nil // a repeated Acquire by the lease's owner
		}
		cp := clone(old)
		return &cp, false, nil
	}
	m.records[rec.ID] = clone(rec)
	var replaced *Record
	if ok && old.Status == StatusInProgress {
		r := old // a lease takeover; in-progress records hold no data
		replaced = &r
	}
	if len(m.records) >= max(m.nextSweep, minSweep) {
		for k, r := range m.records {
			if r.Expired(now) {
				delete(m.records, k)
			}
		}
		m.nextSweep = 2 * len(m.records)
	}
	return replaced, true, nil
}

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, key string) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[key]
	if !ok {
		return nil, nil
	}
	cp := clone(r)
	return &cp, nil
}

// Complete implements Store.
func (m *MemoryStore) Complete(_ context.Context, rec Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.records[rec.ID]
	if ok && old.Status == StatusCompleted && rec.Owner != "" && old.Owner == rec.Owner {
		return nil // a repeated Complete by the record's owner
	}
	if !ok || old.Status != StatusInProgress || old.Owner != rec.Owner {
		return &LeaseLostError{RecordID: rec.ID}
	}
	old.Status = StatusCompleted
	old.Data = bytes.Clone(rec.Data)
	if old.Data == nil {
		old.Data = []byte{}
	}
	old.Expiration = rec.Expiration
	old.LeaseExpiration = time.Time{}
	m.records[rec.ID] = old
	return nil
}

// Release implements Store.
func (m *MemoryStore) Release(_ context.Context, key, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.records[key]
	if !ok || old.Status != StatusInProgress || old.Owner != owner {
		return &LeaseLostError{RecordID: key}
	}
	delete(m.records, key)
	return nil
}

// Len returns the number of records held, expired ones included until swept.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.records)
}

func clone(r Record) Record {
	r.Data = bytes.Clone(r.Data)
	return r
}

// Peek implements ReplayReader: the memory store's reads are always
// consistent, so it is Get.
func (m *MemoryStore) Peek(ctx context.Context, key string) (*Record, error) {
	return m.Get(ctx, key)
}

// PeekBatch implements BatchReader.
func (m *MemoryStore) PeekBatch(_ context.Context, keys []string) (map[string]*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]*Record, len(keys))
	for _, k := range keys {
		out[k] = nil
		if r, ok := m.records[k]; ok {
			cp := clone(r)
			out[k] = &cp
		}
	}
	return out, nil
}

var (
	_ Lister  = (*MemoryStore)(nil)
	_ Deleter = (*MemoryStore)(nil)
)

// List implements Lister. Records come in record id order; the cursor is
// the last id of the page.
func (m *MemoryStore) List(_ context.Context, q ListQuery) (*ListPage, error) {
	if q.Name == "" {
		return nil, &ConfigError{Option: "ListQuery.Name", Err: errors.New("empty name")}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	prefix := q.Name + "#"
	var ids []string
	for id := range m.records {
		if strings.HasPrefix(id, prefix) && id > q.Cursor {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	page := &ListPage{}
	if len(ids) > limit {
		ids = ids[:limit]
		page.Next = ids[limit-1]
	}
	for _, id := range ids {
		page.Records = append(page.Records, memInfo(m.records[id]))
	}
	page.Scanned = len(ids)
	return page, nil
}

// Inspect implements Lister.
func (m *MemoryStore) Inspect(_ context.Context, id string) (*RecordInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[id]
	if !ok {
		return nil, nil
	}
	info := memInfo(r)
	return &info, nil
}

func memInfo(r Record) RecordInfo {
	info := RecordInfo{Record: r, StoredBytes: len(r.Data)}
	info.Record.Data = nil
	return info
}

// Delete implements Deleter.
func (m *MemoryStore) Delete(_ context.Context, rec Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.records[rec.ID]
	if !ok || !SameRecord(&old, &rec) {
		return &RecordChangedError{RecordID: rec.ID}
	}
	delete(m.records, rec.ID)
	return nil
}
