//go:build !race

package gateway

import (
	"sync/atomic"
	"testing"
)

// TestPublishDeflateAllocations publishes a 1.4 KB message to 300 subscribers
// on two loops, a third without permessage-deflate and a third with each of
// two window sizes: a publish allocates its plain frame, its two compressed
// frames and their descriptor, and the hand-offs to the loops, in steady
// state nothing per subscriber.
func TestPublishDeflateAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	const subs = 300
	g, fleet, _ := deflateFleet(t, subs)
	var got atomic.Int64
	for _, rc := range fleet {
		go countFrames(rc, &got)
	}
	payload := quotes(0)
	var total int64
	publish := func() {
		if d, _ := g.Publish("z", OpText, payload); d != subs {
			t.Fatalf("delivered %d", d)
		}
		total += subs
		waitFor(t, &got, total)
	}
	for range 20 {
		publish()
	}
	const n = 200
	before, zs := mallocs(), g.zpub.count.Load()
	for range n {
		publish()
	}
	per := float64(mallocs()-before) / n
	t.Logf("publish of %d bytes to %d subscribers, 2/3 with deflate, on 2 loops: %.2f allocations", len(payload), subs, per)
	if z := g.zpub.count.Load() - zs; z != 2*n {
		t.Errorf("got %d compressions for %d publishes; want %d", z, n, 2*n)
	}
	if per > 6 {
		t.Errorf("a publish allocates %.1f times; want the frames and O(loops): at most 6", per)
	}
}
