package api

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestHeavySlots: large writes are handled HeavyRequests at a time; the
// next waits, gets a slot when one frees, or a 503 with Retry-After after
// HeavyWait; small bodies never wait.
func TestHeavySlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &Server{heavy: make(chan struct{}, HeavyRequests)}
		ctx := t.Context()
		var held []func()
		for range HeavyRequests {
			release, err := s.heavySlot(ctx, LargeBody)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, release)
		}
		if _, err := s.heavySlot(ctx, LargeBody-1); err != nil {
			t.Errorf("a small body waited: %v", err)
		}
		got := make(chan error, 1)
		go func() {
			release, err := s.heavySlot(ctx, LargeBody)
			if err == nil {
				release()
			}
			got <- err
		}()
		time.Sleep(time.Second)
		held[0]()
		if err := <-got; err != nil {
			t.Errorf("a large write did not get the freed slot: %v", err)
		}
		start := time.Now()
		release, err := s.heavySlot(ctx, LargeBody) // takes the slot freed by held[0]
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		_, err = s.heavySlot(ctx, 1<<20)
		var he *httpError
		if !errors.As(err, &he) || he.status != http.StatusServiceUnavailable || he.retryAfter != "1" {
			t.Fatalf("a large write over the slots: %v, want 503 with Retry-After", err)
		}
		if waited := time.Since(start); waited != HeavyWait {
			t.Errorf("refused after %v, want %v", waited, HeavyWait)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.heavySlot(cctx, LargeBody); !errors.Is(err, context.Canceled) {
			t.Errorf("a cancelled request: %v", err)
		}
	})
}
