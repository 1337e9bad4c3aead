package api

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Large bodies. The limits let a create through with 256 KiB of
// custom_values_yaml in 130,000 nodes: decoding and checking it takes
// about 0.3 s and 56 MB at its peak (`mengi bench requests`, BENCHMARKS.md),
// 200 times an ordinary create. Hundreds of them at once would take the
// server's memory, so a body of LargeBody bytes or more holds one of
// HeavyRequests slots while it is decoded, checked and committed; the
// others wait for a slot, HeavyWait at most, then get 503.

// LargeBody is the body size from which a write holds a heavy slot.
const LargeBody = 64 << 10

// HeavyRequests bounds the large writes handled at once.
const HeavyRequests = 4

// HeavyWait bounds how long a large write waits for a slot.
const HeavyWait = 10 * time.Second

// heavySlot waits for a slot when the body is large and returns the
// function that frees it (nothing to free for a small body).
func (s *Server) heavySlot(ctx context.Context, size int) (release func(), err error) {
	if size < LargeBody {
		return func() {}, nil
	}
	wait := time.NewTimer(HeavyWait)
	defer wait.Stop()
	select {
	case s.heavy <- struct{}{}:
		return func() { <-s.heavy }, nil
	case <-wait.C:
		return nil, &httpError{status: http.StatusServiceUnavailable, retryAfter: "1",
			detail: fmt.Sprintf("Server busy: %d large requests (of %d KiB or more) are being handled; retry after 1 s", HeavyRequests, LargeBody>>10)}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
