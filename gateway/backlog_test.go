package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// stallLoop keeps event loop i of g busy, as a long task or a CPU-starved
// loop would, until the returned function is called (or the test ends).
func stallLoop(t *testing.T, g *Gateway, i int) (release func()) {
	t.Helper()
	started, ch := make(chan struct{}), make(chan struct{})
	if err := g.srv.Execute(i, func() { close(started); <-ch }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(testTimeout):
		t.Fatalf("loop %d did not run the stalling task", i)
	}
	released := false
	release = func() {
		if !released {
			released = true
			close(ch)
		}
	}
	t.Cleanup(release)
	return release
}

// subscribersOn returns the number of subscribers of topic on loop i.
func subscribersOn(g *Gateway, topic string, i int) int {
	if tp := g.topics.lookup(topic); tp != nil {
		return int(tp.on(i))
	}
	return 0
}

// TestFanoutCatchesUp: publishes made while a loop is busy wait in its
// fan-out queue behind one task, and reach every subscriber in order once
// the loop runs again.
func TestFanoutCatchesUp(t *testing.T) {
	cfg := testConfig(Route{Path: "/ws/{topic}", Behaviour: PubSub})
	cfg.Loops = 2
	g := startGateway(t, cfg)
	subs := subscribe(t, g, "/ws/b", "b", 10)
	if subscribersOn(g, "b", 0) == 0 || subscribersOn(g, "b", 1) == 0 {
		t.Fatalf("subscribers by loop: %d, %d; want both loops", subscribersOn(g, "b", 0), subscribersOn(g, "b", 1))
	}
	release0, release1 := stallLoop(t, g, 0), stallLoop(t, g, 1)
	const n = 300
	for i := range n {
		if d, err := g.Publish("b", OpText, []byte(strconv.Itoa(i))); d != len(subs) || err != nil {
			t.Fatalf("publish %d: delivered %d, %v", i, d, err)
		}
	}
	for i := range g.queues {
		q := &g.queues[i]
		q.mu.Lock()
		items, scheduled := len(q.items), q.scheduled
		q.mu.Unlock()
		if items != n || !scheduled {
			t.Fatalf("loop %d queue: %d items, drain scheduled %v; want %d and true", i, items, scheduled, n)
		}
	}
	release0()
	release1()
	for _, c := range subs {
		for i := range n {
			expectMessage(t, c, websocket.TextMessage, []byte(strconv.Itoa(i)))
		}
	}
	eventually(t, "the queues to drain", func() bool {
		return g.queues[0].bytes.Load() == 0 && g.queues[1].bytes.Load() == 0
	})
}

// TestPublishRefusedWhenLoopBehind: a publish storm against a loop that
// does not run fills its queue up to Limits.MaxLoopBacklog and no further;
// the publishes beyond are refused as a whole, counted, and their
// publishers told (ErrLoopBehind, 503 from the admin API, close 1013 for a
// client). Every accepted message still arrives, in order.
func TestPublishRefusedWhenLoopBehind(t *testing.T) {
	cfg := testConfig(Route{Path: "/ws/{topic}", Behaviour: PubSub, Publish: true})
	cfg.Loops = 2
	cfg.Limits.MaxLoopBacklog = 1000
	g := startGateway(t, cfg)
	subs := subscribe(t, g, "/ws/b", "b", 4)
	if subscribersOn(g, "b", 0) == 0 || subscribersOn(g, "b", 1) == 0 {
		t.Fatalf("subscribers by loop: %d, %d; want both loops", subscribersOn(g, "b", 0), subscribersOn(g, "b", 1))
	}
	// A publishing client on loop 0: the one whose address a loop-0
	// subscriber has.
	var pub *websocket.Conn
	onLoop0 := make(chan []string, 1)
	if err := g.srv.Execute(0, func() { // the list is loop 0's own
		var addrs []string
		for _, c := range g.topics.lookup("b").loops[0].Load().list {
			addrs = append(addrs, c.lc.RemoteAddr().String())
		}
		onLoop0 <- addrs
	}); err != nil {
		t.Fatal(err)
	}
	for _, a := range <-onLoop0 {
		for _, s := range subs {
			if s.LocalAddr().String() == a {
				pub = s
			}
		}
	}
	if pub == nil {
		t.Fatal("no client found on loop 0")
	}

	release := stallLoop(t, g, 1)
	// msg is message i: 100 bytes, a 102-byte frame.
	msg := func(i int) []byte {
		b := []byte(strconv.Itoa(i) + ":")
		for len(b) < 100 {
			b = append(b, 'a')
		}
		return b
	}
	payload := msg(-1)
	accepted, refused := 0, 0
	for i := range 10000 {
		switch _, err := g.Publish("b", OpText, msg(i)); {
		case err == nil:
			if refused > 0 {
				t.Fatalf("publish %d accepted after %d refused, with the loop still stalled", i, refused)
			}
			accepted++
		case errors.Is(err, ErrLoopBehind):
			refused++
		default:
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if b := g.queues[1].bytes.Load(); b > 1000+102 || accepted == 0 || refused != 10000-accepted {
		t.Fatalf("queue %d bytes after %d accepted and %d refused; want at most %d", b, accepted, refused, 1000+102)
	}
	if got := g.stats.refused[srcAPI].Load(); got != uint64(refused) {
		t.Fatalf("refused api publishes counted %d; want %d", got, refused)
	}

	status, h, body := do(t, http.MethodPost, adminURL(g, "/publish/b"), payload)
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") != "1" {
		t.Fatalf("admin publish: %d, Retry-After %q, %s; want 503 with Retry-After 1", status, h.Get("Retry-After"), body)
	}

	// The client's message reaches its loop (0), which runs, finds loop 1
	// behind and tells the client.
	if err := pub.WriteMessage(websocket.TextMessage, payload); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the client publish to be refused", func() bool { return g.stats.refused[srcClient].Load() == 1 })

	release()
	for _, c := range subs {
		if c == pub {
			continue
		}
		for i := range accepted {
			expectMessage(t, c, websocket.TextMessage, msg(i))
		}
	}
	// pub got the accepted messages too, then close 1013.
	for i := range accepted {
		expectMessage(t, pub, websocket.TextMessage, msg(i))
	}
	expectClose(t, pub, 1013)
	eventually(t, "the queue to drain", func() bool { return g.queues[1].bytes.Load() == 0 })
	eventually(t, "the refused client to leave", func() bool { return g.Subscribers("b") == len(subs)-1 })
	if d, err := g.Publish("b", OpText, []byte("after")); err != nil || d != len(subs)-1 {
		t.Fatalf("publish after the loop caught up: delivered %d, %v; want %d, nil", d, err, len(subs)-1)
	}
}
