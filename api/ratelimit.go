package api

import (
	"math"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyLimits is the per-key request budget (Options.RateLimit): a token
// bucket per API key, refilled at the rate, holding two seconds' worth.
// Only keys that authenticated get a bucket, so the map is bounded by the
// registry's keys.
type keyLimits struct {
	perSecond float64 // <= 0: no limit
	mu        sync.Mutex
	keys      map[string]*rate.Limiter
}

func newKeyLimits(perSecond float64) *keyLimits {
	return &keyLimits{perSecond: perSecond, keys: map[string]*rate.Limiter{}}
}

// allow takes one request from the key's budget; when it is spent it
// returns false and the Retry-After (whole seconds) to answer with.
func (k *keyLimits) allow(sha string, now time.Time) (bool, string) {
	if k.perSecond <= 0 {
		return true, ""
	}
	k.mu.Lock()
	lim, ok := k.keys[sha]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(k.perSecond), max(1, int(2*k.perSecond)))
		k.keys[sha] = lim
	}
	k.mu.Unlock()
	if lim.AllowN(now, 1) {
		return true, ""
	}
	wait := math.Ceil(1 / k.perSecond)
	return false, strconv.Itoa(int(max(1, wait)))
}

// errRateLimited answers a key over its budget.
func (k *keyLimits) errRateLimited(retryAfter string) *httpError {
	return &httpError{status: 429, retryAfter: retryAfter,
		detail: "Too Many Requests: this API key is limited to " + strconv.FormatFloat(k.perSecond, 'f', -1, 64) + " requests per second; retry after " + retryAfter + " s"}
}
