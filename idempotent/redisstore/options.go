package redisstore

// DefaultKeyPrefix is the default Options.KeyPrefix.
const DefaultKeyPrefix = "idempotency:"

// DefaultCompressThreshold is the default Options.CompressThreshold, the same
// as dynamostore's: from 512 bytes on, zstd (fastest level) costs a few
// microseconds per KB and saves about four fifths of a JSON result's memory
// and network bytes.
const DefaultCompressThreshold = 512

// Options configures a Store. New starts from the defaults and applies the
// optFns in order, like dynamostore.New and the AWS SDK.
type Options struct {
	// KeyPrefix goes before every record key: the key of record id is
	// KeyPrefix + "{" + id + "}". Default "idempotency:". Use it to keep
	// several applications apart in one database, or to match an ACL key
	// pattern (~idempotency:*). The braces are a Redis Cluster hash tag:
	// the slot is computed from the id only, whatever the prefix. A prefix
	// that contains "{" itself moves the hash tag into the prefix, which
	// puts every record in one slot (still correct, but one shard).
	KeyPrefix string

	// CompressThreshold is the result size in bytes from which results are
	// compressed (zstd, fastest level; kept only when smaller). Zero means
	// DefaultCompressThreshold; a negative value turns compression off.
	CompressThreshold int
}

func resolveOptions(optFns []func(*Options)) Options {
	o := Options{KeyPrefix: DefaultKeyPrefix}
	for _, fn := range optFns {
		if fn != nil {
			fn(&o)
		}
	}
	return o
}

// WithKeyPrefix is an option function that sets Options.KeyPrefix.
func WithKeyPrefix(prefix string) func(*Options) {
	return func(o *Options) { o.KeyPrefix = prefix }
}
