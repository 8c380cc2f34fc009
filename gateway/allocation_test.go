//go:build !race

package gateway

import (
	"runtime"
	"testing"

	"github.com/upgate/upgate/loop"
	"github.com/upgate/upgate/parser"
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
			if _, err := rc.c.Write(msg); err != nil {
				t.Fatal(err)
			}
			if op, n, err := rc.readFrame(buf); err != nil || op != 2 || n != size {
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

func TestPublishAllocations(t *testing.T) {
	cfg := testConfig()
	cfg.Loops = 1
	g := startGateway(t, cfg)
	const subs = 100
	got, fleet := subscriberFleet(t, g, "/ws/alloc", subs)
	eventually(t, "subscriptions", func() bool { return g.Subscribers("alloc") == subs })
	publisher := fleet[0]
	msg := maskedFrame(1, pattern(64, true))

	// A client's publish: the fan-out runs on the loop that owns every
	// subscriber, so each write is direct.
	const n = 500
	var total int64
	publish := func() {
		if _, err := publisher.c.Write(msg); err != nil {
			t.Fatal(err)
		}
		total += subs
		waitFor(t, got, total)
	}
	for range 50 {
		publish()
	}
	before := mallocs()
	for range n {
		publish()
	}
	per := float64(mallocs()-before) / n
	t.Logf("client publish to %d subscribers on its loop: %.2f allocations per publish", subs, per)
	if per > 5 {
		t.Errorf("a publish to %d subscribers allocates %.1f times, want O(1)", subs, per)
	}

	// A publish from another goroutine: the gateway still encodes once, but
	// each subscriber's write is queued to its loop with gnet's AsyncWrite,
	// which allocates a few small records per call. Only a per-loop batch
	// in the loop can make this O(loops); the figure is logged, not checked.
	payload := pattern(64, true)
	before = mallocs()
	for range n {
		if d := g.Publish("alloc", OpText, payload); d != subs {
			t.Fatalf("delivered %d", d)
		}
		total += subs
		waitFor(t, got, total)
	}
	t.Logf("Gateway.Publish to %d subscribers from another goroutine: %.2f allocations per publish", subs, float64(mallocs()-before)/n)
}

// TestHandshakeAllocations drives the gateway's side of a handshake
// (OnRequest, OnOpen, OnClose) directly, on a connection handle that never
// saw a socket: what the gateway allocates per connection, apart from the
// loop and gnet.
func TestHandshakeAllocations(t *testing.T) {
	g, err := New(testConfig(), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	e := (*engine)(g)
	for _, path := range []string{"/echo", "/ws/topic"} {
		head := []byte("GET " + path + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n")
		h := parser.NewRequest(parser.Limits{})
		if _, err := h.Parse(head); err != nil {
			t.Fatal(err)
		}
		keep := &loop.Conn{} // a subscriber that stays, so the topic does not come and go
		var d loop.Decision
		e.OnRequest(&loop.Request{Head: h, Conn: keep, WebSocket: true}, &d)
		e.OnOpen(keep)
		per := testing.AllocsPerRun(1000, func() {
			lc := &loop.Conn{}
			d = loop.Decision{}
			e.OnRequest(&loop.Request{Head: h, Conn: lc, WebSocket: true}, &d)
			if d.Action != loop.ActUpgrade {
				t.Fatalf("decision %+v", d)
			}
			e.OnOpen(lc)
			e.OnClose(lc, 1000, nil)
		})
		// One for the test's loop.Conn; the rest is the gateway's.
		t.Logf("%s: %.1f allocations per handshake in the gateway", path, per-1)
		if per-1 > 6 {
			t.Errorf("%s: %.1f allocations per handshake, want at most 6", path, per-1)
		}
	}
}
