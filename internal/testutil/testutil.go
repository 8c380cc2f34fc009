// Package testutil holds what the tests of every package of the module
// share that is not about WebSocket: the bound on one blocking step of a
// test and the wait for a condition. It imports nothing from the module.
package testutil

import (
	"testing"
	"time"
)

// Timeout bounds every blocking step of a test: a dial, a read, a wait for
// a condition. A step that takes longer is a failure, not a slow machine.
const Timeout = 10 * time.Second

// pollInterval is how often Eventually checks its condition.
const pollInterval = 5 * time.Millisecond

// Eventually checks cond every 5 ms until it holds, and fails the test with
// "timed out waiting for <what>" when it still does not after Timeout. It
// is the way to wait for something another goroutine or process does: a
// test that sleeps instead either fails on a slow machine or passes without
// waiting for anything. cond runs on the caller's goroutine, which must be
// the test's (Eventually calls t.Fatalf).
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(pollInterval)
	}
}
