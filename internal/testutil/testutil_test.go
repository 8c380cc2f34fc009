package testutil

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestEventually: Eventually returns once the condition another goroutine
// makes true holds.
func TestEventually(t *testing.T) {
	var v atomic.Bool
	time.AfterFunc(20*time.Millisecond, func() { v.Store(true) })
	Eventually(t, "the flag", v.Load)
	if !v.Load() {
		t.Fatal("got false after Eventually; want true")
	}
}
