package dynamostore

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/idemlambda/idemlambda/idempotent"
)

// Default attribute names and values, as fixed by the contract's record layout.
const (
	DefaultKeyAttr          = "id"
	DefaultStatusAttr       = "status"
	DefaultExpirationAttr   = "expiration"
	DefaultLeaseAttr        = "in_progress_expiration"
	DefaultOwnerAttr        = "owner"
	DefaultFingerprintAttr  = "validation"
	DefaultDataAttr         = "data"
	DefaultDataFormatAttr   = "data_format"
	DefaultChunksAttr       = "data_chunks"
	DefaultPartitionKeyAttr = "pk"
	DefaultSortKeyAttr      = "sk"
	// DefaultPartitionPrefix prefixes the static partition key value of
	// composite-key tables: "idempotency#<name>".
	DefaultPartitionPrefix = "idempotency#"
)

// DefaultCompressThreshold is the default Options.CompressThreshold. Below
// it a record fits one write unit either way (docs/performance.md has the
// measurement); above it zstd costs a few microseconds per KB and saves
// about four fifths of the write units of a JSON result.
const DefaultCompressThreshold = 512

// Options configures a Store and CreateTable. New and CreateTable start from
// the defaults (the attribute names of the contract, simple key) and then
// apply the optFns in order, like the AWS SDK's own option functions.
type Options struct {
	// KeyAttr is the partition key of a simple-key table; it holds the
	// record id. Default "id". Unused with CompositeKey.
	KeyAttr string

	// CompositeKey selects a table with partition key PartitionKeyAttr
	// (holding a static value) and sort key SortKeyAttr (holding the record
	// id), so the idempotency records can share a table with other items.
	CompositeKey bool
	// PartitionKeyAttr is the partition key of a composite-key table.
	// Default "pk".
	PartitionKeyAttr string
	// SortKeyAttr is the sort key of a composite-key table. Default "sk".
	SortKeyAttr string
	// PartitionKeyValue is the static partition key value of a composite-key
	// table. Empty (the default) means "idempotency#<name>", where name is
	// the part of the record id before its last '#' (the function name), or
	// the whole id when it has no '#'.
	PartitionKeyValue string

	// StatusAttr holds the record status (S). Default "status".
	StatusAttr string
	// ExpirationAttr holds the expiration in epoch seconds (N); it is the
	// table's TTL attribute. Default "expiration".
	ExpirationAttr string
	// LeaseAttr holds the lease end of an in-progress record in epoch
	// milliseconds (N). Default "in_progress_expiration".
	LeaseAttr string
	// OwnerAttr holds the lease owner token (S). Default "owner".
	OwnerAttr string
	// FingerprintAttr holds the payload fingerprint hash (S). Default
	// "validation".
	FingerprintAttr string
	// DataAttr holds the stored result (B). Default "data".
	DataAttr string
	// DataFormatAttr tags how DataAttr (or the chunks) hold the result (S):
	// absent for the plain bytes (every record written before compression
	// existed reads that way), "zstd" for a zstd frame. Default
	// "data_format".
	DataFormatAttr string
	// ChunksAttr marks a result split into chunk items (M: n = the number of
	// chunks, set = the chunk set version, sha256 = the digest of the joined
	// chunk data); such a record has no DataAttr. Default "data_chunks".
	ChunksAttr string

	// CompressThreshold is the result size in bytes from which results are
	// compressed (zstd, fastest level; kept only when smaller). Zero means
	// DefaultCompressThreshold; a negative value turns compression off.
	CompressThreshold int

	// Logger receives CreateTable's notices (such as a server without the
	// TTL API). Nil means slog.Default().
	Logger *slog.Logger
}

func defaultOptions() Options {
	return Options{
		KeyAttr:          DefaultKeyAttr,
		PartitionKeyAttr: DefaultPartitionKeyAttr,
		SortKeyAttr:      DefaultSortKeyAttr,
		StatusAttr:       DefaultStatusAttr,
		ExpirationAttr:   DefaultExpirationAttr,
		LeaseAttr:        DefaultLeaseAttr,
		OwnerAttr:        DefaultOwnerAttr,
		FingerprintAttr:  DefaultFingerprintAttr,
		DataAttr:         DefaultDataAttr,
		DataFormatAttr:   DefaultDataFormatAttr,
		ChunksAttr:       DefaultChunksAttr,
	}
}

func resolveOptions(optFns []func(*Options)) Options {
	o := defaultOptions()
	for _, fn := range optFns {
		if fn != nil {
			fn(&o)
		}
	}
	return o
}

// WithCompositeKey is an option function that selects a composite-key table
// with the default attributes "pk" and "sk"; partitionValue is the static
// partition key value, or empty for "idempotency#<name>".
func WithCompositeKey(partitionValue string) func(*Options) {
	return func(o *Options) {
		o.CompositeKey = true
		o.PartitionKeyValue = partitionValue
	}
}

// idAttr is the attribute that holds the record id.
func (o *Options) idAttr() string {
	if o.CompositeKey {
		return o.SortKeyAttr
	}
	return o.KeyAttr
}

// partitionValue is the static partition key value for the record id key.
func (o *Options) partitionValue(key string) string {
	if o.PartitionKeyValue != "" {
		return o.PartitionKeyValue
	}
	name := key
	if i := strings.LastIndexByte(key, '#'); i >= 0 {
		name = key[:i]
	}
	return DefaultPartitionPrefix + name
}

func (o *Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// validate reports attribute names that cannot work: an empty name, or one
// name used for two attributes (a partition key that is also the sort key, a
// record attribute that overwrites another or the key). DynamoDB itself
// would reject some of these only on the first write, others never (the
// item would silently lose an attribute).
func (o *Options) validate() error {
	type named struct{ field, name string }
	attrs := []named{}
	if o.CompositeKey {
		attrs = append(attrs, named{"PartitionKeyAttr", o.PartitionKeyAttr}, named{"SortKeyAttr", o.SortKeyAttr})
	} else {
		attrs = append(attrs, named{"KeyAttr", o.KeyAttr})
	}
	attrs = append(attrs,
		named{"StatusAttr", o.StatusAttr},
		named{"ExpirationAttr", o.ExpirationAttr},
		named{"LeaseAttr", o.LeaseAttr},
		named{"OwnerAttr", o.OwnerAttr},
		named{"FingerprintAttr", o.FingerprintAttr},
		named{"DataAttr", o.DataAttr},
		named{"DataFormatAttr", o.DataFormatAttr},
		named{"ChunksAttr", o.ChunksAttr},
	)
	var errs []error
	seen := make(map[string]string, len(attrs))
	for _, a := range attrs {
		if a.name == "" {
			errs = append(errs, fmt.Errorf("%s is empty", a.field))
			continue
		}
		if first, dup := seen[a.name]; dup {
			errs = append(errs, fmt.Errorf("%s and %s are both %q", first, a.field, a.name))
			continue
		}
		seen[a.name] = a.field
	}
	if len(errs) == 0 {
		return nil
	}
	return &idempotent.ConfigError{Option: "dynamostore.Options", Err: errors.Join(errs...)}
}
