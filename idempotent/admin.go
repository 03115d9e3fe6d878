package idempotent

import (
	"context"
	"errors"
)

// RecordID returns the record id the library derives from key material in
// namespace name (WithName, default AWS_LAMBDA_FUNCTION_NAME):
// "<name>#<sha256 hex of material>". For Wrap with WithKeyFunc the material
// is the string the key function returns; for key paths and the whole-event
// key it is the canonical JSON of the value (KeyMaterialJSON), so a string
// key A-1 is the material "\"A-1\"", quotes included. Operators' tools use
// it to find the record of one request.
func RecordID(name, material string) string { return recordID(name, material) }

// StepRecordID returns the record id of Do(ctx, guard, step, key, ...) in
// namespace name. An empty key (no key) has no record: it returns "".
func StepRecordID(name, step, key string) string {
	m := stepKey(step, key)
	if m == "" {
		return ""
	}
	return recordID(name, m)
}

// KeyMaterialJSON returns the key material of the JSON value doc as a key
// path or the whole-event key reads it (canonical JSON). A missing value
// (null, "", empty list or object) is a *NoKeyError.
func KeyMaterialJSON(doc []byte) (string, error) {
	v, err := decodeJSON(doc)
	if err != nil {
		return "", &NoKeyError{Err: err}
	}
	m, err := keyMaterial(v)
	if err != nil {
		return "", &NoKeyError{Err: err}
	}
	if m == "" {
		return "", &NoKeyError{}
	}
	return m, nil
}

// RecordInfo is what an operator sees of a stored record: the record
// without its data, and how the data is stored.
type RecordInfo struct {
	// Record is the record; its Data is nil.
	Record Record
	// StoredBytes is the size of the stored result (after compression, all
	// chunks together); 0 for an in-progress record.
	StoredBytes int
	// Chunks is the number of chunk items holding the result; 0 when it is
	// inline.
	Chunks int
}

// ListQuery selects a page of records for Lister.List.
type ListQuery struct {
	// Name is the namespace whose records are listed (the part of the record
	// id before "#"); required.
	Name string
	// Cursor continues after a page: the Next of the previous page. Empty
	// starts at the beginning.
	Cursor string
	// Limit bounds the items a page examines; 0 is the store's default.
	Limit int
}

// ListPage is one page of records.
type ListPage struct {
	// Records are the records of the page, in the store's order.
	Records []RecordInfo
	// Next is the cursor of the next page, empty after the last one.
	Next string
	// Scanned is the number of items the store examined.
	Scanned int
	// Foreign counts items under the name that are not decodable records
	// (written by something else, or corrupt); they are not in Records.
	Foreign int
	// Capacity is the capacity the page consumed (DynamoDB read units), 0
	// where the store does not report it.
	Capacity float64
}

// Lister is an optional interface of a Store, for operators' tools: paged
// listing of the records of one name, and one record's stored form. The
// DynamoDB, Redis and memory stores implement it. Listing is not a
// snapshot: records written meanwhile may or may not appear.
type Lister interface {
	// List returns one page of the records of q.Name.
	List(ctx context.Context, q ListQuery) (*ListPage, error)
	// Inspect returns record id without reading its data, or nil when
	// there is none. An item that is not a record is a *CorruptRecordError.
	Inspect(ctx context.Context, id string) (*RecordInfo, error)
}

// ErrRecordChanged: a conditional delete found the record changed or gone
// since it was read. The concrete error is a *RecordChangedError.
var ErrRecordChanged = errors.New("idempotent: record changed since it was read; nothing deleted")

// RecordChangedError is returned (matching ErrRecordChanged) by
// Deleter.Delete when the record is not the one given.
type RecordChangedError struct {
	// RecordID is the record id.
	RecordID string
}

func (e *RecordChangedError) Error() string { return detail(ErrRecordChanged, e.RecordID, nil) }

// Is makes errors.Is(err, ErrRecordChanged) true.
func (e *RecordChangedError) Is(target error) bool { return target == ErrRecordChanged }

// Deleter is an optional interface of a Store: delete one record so the
// next request with its key runs again.
type Deleter interface {
	// Delete removes record rec.Key, with its chunks, only if it still is
	// rec as read: the same status, owner and expiration (and lease end of
	// an in-progress record). Otherwise it deletes nothing and returns a
	// *RecordChangedError, so a run that completed or took the key over
	// meanwhile is not erased.
	Delete(ctx context.Context, rec Record) error
}

// SameRecord reports whether a and b are the same life of one record, as
// Deleter.Delete requires: id, status, owner, expiration (epoch s) and, for
// an in-progress record, lease end (epoch ms).
func SameRecord(a, b *Record) bool {
	if a.ID != b.ID || a.Status != b.Status || a.Owner != b.Owner || a.Expiration.Unix() != b.Expiration.Unix() {
		return false
	}
	return a.Status != StatusInProgress || a.LeaseExpiration.UnixMilli() == b.LeaseExpiration.UnixMilli()
}
