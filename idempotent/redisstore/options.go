package redisstore

// DefaultKeyPrefix is the default Options.KeyPrefix.
const DefaultKeyPrefix = "idempotency:"

// DefaultCompressThreshold is the default Options.CompressThreshold: results
// from 512 bytes on are stored zstd-compressed (fastest level) when that
// makes them smaller. Redis has no item size limit to fit under, so the
// choice weighs the client's CPU against the server's memory, its CPU and the
// bytes on the wire (BenchmarkCompression, BenchmarkZstd; docs/redis.md has
// the table). Compression costs the client about 5 µs per completion and
// 2.5 µs per replay at 512 B, 35–55 and 17–24 µs at 20 KB, 1.7–3.3 and about
// 1 ms at 1 MB. It stores a JSON result in a third to a fifteenth of the
// memory from 2 KB on (20 KB: 1.7–6.3 KB), sends as much less over the
// network both ways, and spares the server most of what a completion costs
// it: every byte of a result passes through the complete script's arguments,
// which on Redis 7.0 costs far more than the plain SET it ends in — 122 µs
// of the single-threaded server's time for a 20 KB result stored plain,
// 12–49 µs compressed, and milliseconds at 1 MB, during which the server
// answers no other client. Below 512 bytes there is little to save. It is the
// same threshold as dynamostore's.
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
	// DefaultCompressThreshold; a negative value turns compression off
	// (see DefaultCompressThreshold for what that trades). Records are read
	// whatever the setting: each says whether its data is compressed.
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
