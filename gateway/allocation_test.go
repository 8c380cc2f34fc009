//go:build !race

package gateway

import (
	"runtime"
	"testing"
)

// These tests count every allocation of the process (runtime.MemStats)
// while real sockets carry the traffic: the clients below allocate nothing
// per message, so what is counted is the gateway, the loop and gnet, plus
// background noise (timers) that stays far below one per message.

func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

func TestEchoAllocations(t *testing.T) {
	cfg := testConfig()
	cfg.Loops = 1
	g := startGateway(t, cfg)
	rc := dialRaw(t, g, "/echo")
	buf := make([]byte, 4096)
	for _, size := range []int{16, 1000, 4000} {
		msg := maskedFrame(2, pattern(size, false))
		roundTrip := func() {
			if _, err := rc.Conn.Write(msg); err != nil {
				t.Fatal(err)
			}
			if op, n, err := rc.ReadFrameInto(buf); err != nil || op != 2 || n != size {
				t.Fatalf("echo: op %d, %d bytes, %v", op, n, err)
			}
		}
		for range 200 {
			roundTrip()
		}
		const n = 5000
		before := mallocs()
		for range n {
			roundTrip()
		}
		per := float64(mallocs()-before) / n
		t.Logf("echo of %d bytes: %.4f allocations per message", size, per)
		if per > 0.05 {
			t.Errorf("echo of %d bytes allocates %.3f times per message, want 0", size, per)
		}
	}
}

// TestPublishAllocations publishes to 1000 subscribers spread over two
// event loops. The frame is encoded once; each loop with subscribers gets
// one task that writes it to them all. So a publish allocates O(loops):
// the frame, and gnet's task records for one hand-off per loop (none for
// the publisher's own loop) — not O(subscribers).
func TestPublishAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	cfg := testConfig()
	cfg.Loops = 2
	g := startGateway(t, cfg)
	const subs = 1000
	got, fleet := subscriberFleet(t, g, "/ws/alloc", subs)
	eventually(t, "subscriptions", func() bool { return g.Subscribers("alloc") == subs })
	tp := g.topics.lookup("alloc")
	for i := range tp.loops {
		if tp.on(i) == 0 {
			t.Fatalf("no subscriber on loop %d: the test needs both loops", i)
		}
	}
	publisher := fleet[0]
	msg := maskedFrame(1, pattern(64, true))
	payload := pattern(64, true)
	const n = 100
	var total int64
	measure := func(name string, publish func()) float64 {
		for range 10 {
			publish()
			total += subs
			waitFor(t, got, total)
		}
		before := mallocs()
		for range n {
			publish()
			total += subs
			waitFor(t, got, total)
		}
		per := float64(mallocs()-before) / n
		t.Logf("%s to %d subscribers on 2 loops: %.2f allocations per publish", name, subs, per)
		return per
	}

	// A client's publish: the subscribers of its loop are written on the
	// spot, the other loop gets one task.
	client := measure("client publish", func() {
		if _, err := publisher.Conn.Write(msg); err != nil {
			t.Fatal(err)
		}
	})
	// A publish from another goroutine: one task per loop.
	api := measure("Gateway.Publish from another goroutine", func() {
		if d, _ := g.Publish("alloc", OpText, payload); d != subs {
			t.Fatalf("delivered %d", d)
		}
	})
	for _, per := range []float64{client, api} {
		if per > 10 {
			t.Errorf("a publish to %d subscribers on 2 loops allocates %.1f times, want O(loops): at most 10", subs, per)
		}
	}
}
