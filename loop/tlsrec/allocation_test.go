//go:build !race

package tlsrec

import (
	"bytes"
	"testing"
)

// The race detector allocates on its own, so these tests run without it.

// TestAllocsEchoRecord: protecting a 128-byte message into a buffer with
// room, and opening it into one, allocates nothing once the AEADs exist.
func TestAllocsEchoRecord(t *testing.T) {
	for i, suite := range suites {
		srv, cli := pair(t, suite)
		msg := bytes.Repeat([]byte{'m'}, 128)
		wire := make([]byte, 0, 4096)
		plain := make([]byte, 0, 4096)
		bad := false
		allocs := testing.AllocsPerRun(1000, func() {
			w, err := cli.Encrypt(wire[:0], msg)
			if err != nil {
				bad = true
				return
			}
			n, out, err := srv.Decrypt(plain[:0], w)
			if err != nil || n != len(w) || len(out) != len(msg) {
				bad = true
			}
		})
		if bad {
			t.Fatalf("#%d: the round trip failed", i)
		}
		if allocs != 0 {
			t.Errorf("#%d: got %v allocations per record; want 0", i, allocs)
		}
	}
}
