//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"math"
	"testing"
)

// TestPresize: the room reserved for a frame follows its declared length up
// to maxPresize, also for lengths past 2 GiB, which a 32-bit int does not
// hold.
func TestPresize(t *testing.T) {
	// A binary frame header with a 64-bit length (RFC 6455 §5.2), unmasked.
	header := func(n uint64) []byte {
		b := []byte{0x82, 127, 0, 0, 0, 0, 0, 0, 0, 0}
		for i := range 8 {
			b[9-i] = byte(n >> (8 * i))
		}
		return b
	}
	for i, tc := range []struct {
		length  uint64
		max     int64
		wantMin int // least capacity expected; 0: b left as it is
	}{
		{100, 1 << 20, 110},
		{maxPresize + 1, 1 << 20, maxPresize},
		{3 << 30, math.MaxUint32, maxPresize},
		{math.MaxUint32, math.MaxUint32, maxPresize},
		{2 << 20, 1 << 20, 0}, // over the limit
	} {
		b := presize(nil, header(tc.length), tc.max)
		if tc.wantMin == 0 && cap(b) != 0 || cap(b) < tc.wantMin || cap(b) > 2*maxPresize {
			t.Errorf("#%d: got capacity %d; want at least %d and at most %d", i, cap(b), tc.wantMin, 2*maxPresize)
		}
	}
}
