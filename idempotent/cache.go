package idempotent

import (
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// DefaultLocalCacheBytes bounds the stored bytes the local cache keeps
// (WithLocalCache): 16 MiB, an eighth of the smallest Lambda function
// (128 MB), however many entries that is.
const DefaultLocalCacheBytes = 16 << 20

// entryOverhead approximates what one cache entry costs beside its key,
// fingerprint and data: the map slot, the list element, the entry itself.
const entryOverhead = 128

// localCache is the per-process LRU of completed records, bounded by
// entries and by bytes. It keeps each record's stored bytes only: a hit
// decodes them, so no two callers ever share memory.
type localCache struct {
	mu       sync.Mutex
	lru      *simplelru.LRU[string, cacheEntry]
	bytes    int64 // the sum of size() over the entries held
	maxBytes int64
}

type cacheEntry struct {
	expiration  int64
	fingerprint string
	data        []byte
}

func (e *cacheEntry) size(id string) int64 {
	return int64(len(id) + len(e.fingerprint) + len(e.data) + entryOverhead)
}

func newLocalCache(entries int, maxBytes int64) (*localCache, error) {
	c := &localCache{maxBytes: maxBytes}
	l, err := simplelru.NewLRU(entries, func(id string, e cacheEntry) { c.bytes -= e.size(id) })
	if err != nil {
		return nil, err
	}
	c.lru = l
	return c, nil
}

func (c *localCache) get(id string) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Get(id)
}

func (c *localCache) remove(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(id)
}

// add keeps e under id, evicting the least recently used entries until both
// bounds hold. An entry larger than the byte bound on its own is not kept.
func (c *localCache) add(id string, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(id) // replace: its bytes leave through the callback
	n := e.size(id)
	if n > c.maxBytes {
		return
	}
	for c.bytes+n > c.maxBytes {
		if _, _, ok := c.lru.RemoveOldest(); !ok {
			break
		}
	}
	c.lru.Add(id, e) // may evict the oldest entry by count, through the callback
	c.bytes += n
}

// stats returns the number of entries and the bytes they hold.
func (c *localCache) stats() (entries int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.bytes
}
