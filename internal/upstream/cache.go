package upstream

import (
	"container/list"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/enrichproxy/enrichproxy/internal/normalize"
)

// maxCacheBytes bounds the bodies the result cache holds in all, whatever cache_entries
// says: a finished bulk result can be megabytes.
const maxCacheBytes = 128 << 20

// cache keeps the final answers of result GETs (SPEC 4: finished Enrow results and eCore
// processed jobs do not change) for a TTL, least recently used first out, bounded in
// entries and bytes.
type cache struct {
	ttl     time.Duration
	entries int

	mu    sync.Mutex
	order *list.List // of *cacheEntry, most recently used first
	items map[string]*list.Element
	bytes int
}

// PassHeaders are the vendor answer headers the proxy passes on with an answer read
// whole (drop-in mode, SPEC 10): all that a cached answer keeps of its headers.
var PassHeaders = []string{"Content-Type", "Retry-After", "X-Ratelimit-Limit", "X-Ratelimit-Remaining",
	"X-Ratelimit-Reset", "Www-Authenticate", "Allow"}

type cacheEntry struct {
	key     string
	out     Outcome
	expires time.Time
}

// newCache returns nil, a cache that keeps nothing, when ttl or entries is zero.
func newCache(ttl time.Duration, entries int) *cache {
	if ttl <= 0 || entries <= 0 {
		return nil
	}
	return &cache{ttl: ttl, entries: entries, order: list.New(), items: map[string]*list.Element{}}
}

// get returns a copy of the cached outcome for key, or nil.
func (c *cache) get(key string, now time.Time) *Outcome {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil
	}
	e := el.Value.(*cacheEntry)
	if now.After(e.expires) {
		c.remove(el)
		return nil
	}
	c.order.MoveToFront(el)
	out := e.out
	return &out
}

// put keeps a copy of out under key; its body is shared, never written to.
func (c *cache) put(key string, out *Outcome, now time.Time) {
	if c == nil || len(out.Body) > maxCacheBytes/16 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.remove(el)
	}
	// Only the headers an answer passes on are kept: the cache is live heap that every
	// collection walks, and a vendor's full header map is most of an entry otherwise.
	kept := *out
	kept.Header = nil
	for _, k := range PassHeaders {
		if vs := out.Header[k]; len(vs) > 0 {
			if kept.Header == nil {
				kept.Header = make(http.Header, 1)
			}
			kept.Header[k] = vs
		}
	}
	c.items[key] = c.order.PushFront(&cacheEntry{key: key, out: kept, expires: now.Add(c.ttl)})
	c.bytes += len(out.Body)
	for c.order.Len() > c.entries || c.bytes > maxCacheBytes {
		c.remove(c.order.Back())
	}
}

func (c *cache) remove(el *list.Element) {
	e := c.order.Remove(el).(*cacheEntry)
	delete(c.items, e.key)
	c.bytes -= len(e.out.Body)
}

// cacheable reports whether a GET may be answered from the cache: the result operations
// (email.find, email.verify, phone.find and their .bulk forms), never a download.
func cacheable(vendor string, req *Request) bool {
	if req.Method != http.MethodGet || strings.Contains(req.Path, "/download") {
		return false
	}
	return normalize.IsResultOperation(normalize.Classify(vendor, req.Method, req.Path))
}

// final reports whether an answer will not change, so may be kept: ok with a decided
// result or a completed job, or not_found for an unknown id. Never pending or an error,
// nor a listing (ok without a result or a job: job lists, record pages).
func final(out *Outcome) bool {
	env := &out.Envelope
	switch env.Status {
	case normalize.StatusOK:
		if env.Job != nil {
			return env.Job.State == normalize.JobCompleted
		}
		return env.Qualification != "" && env.Qualification != normalize.QualPending
	case normalize.StatusNotFound:
		return env.Error != nil && env.Error.Code == normalize.CodeUnknownID
	}
	return false
}

// noCache reports whether the client asked not to be answered from a cache.
func noCache(h http.Header) bool {
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(strings.ToLower(v), ",") {
			switch strings.TrimSpace(d) {
			case "no-cache", "no-store", "max-age=0":
				return true
			}
		}
	}
	return false
}
