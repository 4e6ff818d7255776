package registry

import (
	"container/list"
	"sync"
)

// byteCache is a size-bounded LRU of immutable content keyed by digest, so
// hot manifests are served without touching storage. Content addressed by
// digest never changes, so entries need no invalidation to stay correct.
type byteCache struct {
	mu      sync.Mutex
	max     int64
	size    int64
	order   *list.List // front = most recently used
	entries map[string]*list.Element
}

type cacheEntry struct {
	key  string
	data []byte
}

func newByteCache(max int64) *byteCache {
	return &byteCache{max: max, order: list.New(), entries: map[string]*list.Element{}}
}

func (c *byteCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry).data, true
}

func (c *byteCache) put(key string, data []byte) {
	if int64(len(data)) > c.max/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok {
		return
	}
	c.entries[key] = c.order.PushFront(&cacheEntry{key: key, data: data})
	c.size += int64(len(data))
	for c.size > c.max {
		last := c.order.Back()
		e := last.Value.(*cacheEntry)
		c.order.Remove(last)
		delete(c.entries, e.key)
		c.size -= int64(len(e.data))
	}
}

func (c *byteCache) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.order.Remove(el)
		delete(c.entries, key)
		c.size -= int64(len(el.Value.(*cacheEntry).data))
	}
}
