//go:build !race

package deflate

import (
	"bytes"
	"testing"
)

// The race detector allocates on its own, so these tests run without it.

// TestAllocs: once warm, compressing a 2 KiB message into a reused buffer
// and inflating it into another allocates nothing, at every window size and
// several levels, and neither do the Loop's lookups.
func TestAllocs(t *testing.T) {
	msgs := corpus()
	var l Loop
	i := 0
	for _, level := range []int{BestSpeed, DefaultLevel, MaxLevel} {
		for bits := MinWindowBits; bits <= MaxWindowBits; bits++ {
			i++
			var p, m []byte
			k, bad := 0, false
			run := func() {
				msg := msgs[k%len(msgs)]
				k++
				c, _ := l.Compressor(level, bits)
				p, _ = c.Compress(p[:0], msg)
				var err error
				m, err = l.Decompressor().Decompress(m[:0], p, 4<<10)
				if err != nil || !bytes.Equal(m, msg) {
					bad = true
				}
			}
			for range 2 * len(msgs) {
				run() // warm: buffers reach their size
			}
			allocs := testing.AllocsPerRun(200, run)
			if bad {
				t.Fatalf("#%d: level %d, %d bits: got a failed round trip; want the message", i, level, bits)
			}
			if allocs != 0 {
				t.Errorf("#%d: level %d, %d bits: got %v allocations per message; want 0", i, level, bits, allocs)
			}
		}
	}
}

// TestAllocsTooLarge: refusing a message over the limit allocates nothing.
func TestAllocsTooLarge(t *testing.T) {
	c := mustCompressor(t, DefaultLevel, 15)
	bomb, _ := c.Compress(nil, make([]byte, 1<<20))
	d := NewDecompressor()
	m := make([]byte, 0, 4<<10)
	allocs := testing.AllocsPerRun(100, func() {
		m, _ = d.Decompress(m[:0], bomb, 4<<10)
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per refused message; want 0", allocs)
	}
}
