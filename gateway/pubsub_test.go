package gateway

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// subscribe opens n subscribers of path and waits until the topic has them.
func subscribe(t *testing.T, g *Gateway, path, topic string, n int) []*websocket.Conn {
	t.Helper()
	subs := make([]*websocket.Conn, n)
	for i := range subs {
		subs[i] = dial(t, g, path, nil)
	}
	eventually(t, "subscriptions", func() bool { return g.Subscribers(topic) == n })
	return subs
}

// expectAll checks that every subscriber receives the message.
func expectAll(t *testing.T, subs []*websocket.Conn, typ int, p []byte) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(subs))
	for i, c := range subs {
		wg.Go(func() {
			gt, got, err := c.ReadMessage()
			switch {
			case err != nil:
				errs <- fmt.Errorf("subscriber %d: %v", i, err)
			case gt != typ || string(got) != string(p):
				errs <- fmt.Errorf("subscriber %d: got type %d %.40q, want %d %.40q", i, gt, got, typ, p)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestPubSubFanout(t *testing.T) {
	g := startGateway(t, testConfig(Route{Path: "/ws/{topic}", Behaviour: PubSub, Publish: true}))
	const n = 40
	subs := subscribe(t, g, "/ws/news", "news", n)
	other := dial(t, g, "/ws/sport", nil)
	eventually(t, "other topic", func() bool { return g.Subscribers("sport") == 1 })

	// From a client: everyone on the topic gets it, the sender included.
	msg := []byte("from a client")
	if err := subs[3].WriteMessage(websocket.TextMessage, msg); err != nil {
		t.Fatal(err)
	}
	expectAll(t, subs, websocket.TextMessage, msg)

	// From the admin API, text then binary.
	m := doJSON(t, "POST", adminURL(g, "/publish/news"), []byte("from the API"), 200)
	if m["delivered"] != float64(n) || m["topic"] != "news" {
		t.Fatalf("publish answer %v, want %d delivered", m, n)
	}
	expectAll(t, subs, websocket.TextMessage, []byte("from the API"))
	bin := pattern(3000, false)
	m = doJSON(t, "POST", adminURL(g, "/publish/news?binary=1"), bin, 200)
	if m["delivered"] != float64(n) {
		t.Fatalf("binary publish answer %v", m)
	}
	expectAll(t, subs, websocket.BinaryMessage, bin)

	// From Go.
	if got, _ := g.Publish("news", OpBinary, []byte("from Go")); got != n {
		t.Fatalf("Publish delivered %d, want %d", got, n)
	}
	expectAll(t, subs, websocket.BinaryMessage, []byte("from Go"))
	if got, _ := g.Publish("nobody", OpText, []byte("x")); got != 0 {
		t.Fatalf("Publish to an empty topic delivered %d", got)
	}

	// The other topic saw nothing but its own message.
	if got, _ := g.Publish("sport", OpText, []byte("goal")); got != 1 {
		t.Fatalf("Publish(sport) delivered %d", got)
	}
	expectMessage(t, other, websocket.TextMessage, []byte("goal"))

	if v := metric(t, g, `upgate_publishes_total{source="client",route="/ws/{topic}"}`); v != 1 {
		t.Fatalf("client publishes %v, want 1", v)
	}
	if v := metric(t, g, `upgate_publish_deliveries_total{source="api",route=""}`); v != 3*n+1 {
		t.Fatalf("api deliveries %v, want %d", v, 3*n+1)
	}
	if v := metric(t, g, "upgate_topics"); v != 2 {
		t.Fatalf("upgate_topics %v, want 2", v)
	}

	// Unsubscribe on close: the topic goes with its last subscriber.
	for _, c := range subs {
		_ = c.Close()
	}
	eventually(t, "unsubscribed", func() bool { return g.Subscribers("news") == 0 })
	if g.topics.lookup("news") != nil {
		t.Fatal("empty topic still registered")
	}
}

func TestPubSubQueryTopic(t *testing.T) {
	g := startGateway(t, testConfig(
		Route{Path: "/pubsub", Behaviour: PubSub, Publish: true},
		Route{Path: "/ws/{topic}", Behaviour: PubSub},
	))
	a := dial(t, g, "/pubsub?x=1&topic=a%20b", nil)
	b := dial(t, g, "/ws/a%20b", nil)
	c := dial(t, g, "/ws?topic=a+b", nil)
	eventually(t, "subscriptions", func() bool { return g.Subscribers("a b") == 3 })
	if err := a.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	expectAll(t, []*websocket.Conn{a, b, c}, websocket.TextMessage, []byte("hi"))
	dialStatus(t, g, "/pubsub", nil, 400)
	dialStatus(t, g, "/pubsub?topic=", nil, 400)
	dialStatus(t, g, "/ws/a/b", nil, 404)
}

func TestPublishNotAllowed(t *testing.T) {
	g := startGateway(t, testConfig(Route{Path: "/feed/{topic}", Behaviour: PubSub}))
	c := dial(t, g, "/feed/t", nil)
	eventually(t, "subscription", func() bool { return g.Subscribers("t") == 1 })
	if got, _ := g.Publish("t", OpText, []byte("server news")); got != 1 {
		t.Fatalf("Publish delivered %d", got)
	}
	expectMessage(t, c, websocket.TextMessage, []byte("server news"))
	if err := c.WriteMessage(websocket.TextMessage, []byte("may I?")); err != nil {
		t.Fatal(err)
	}
	expectClose(t, c, websocket.ClosePolicyViolation)
	eventually(t, "unsubscribed", func() bool { return g.Subscribers("t") == 0 })
	if v := metric(t, g, `upgate_rejections_total{reason="publish_denied"}`); v != 1 {
		t.Fatalf("publish_denied %v, want 1", v)
	}
}

// TestSubscriberList checks the per-loop lists against a plain model
// through random subscribes and unsubscribes, and that a list gives back
// its memory once it has shrunk.
func TestSubscriberList(t *testing.T) {
	const loops = 3
	r := newTopicRegistry(loops)
	rng := rand.New(rand.NewPCG(1, 2))
	var model []*subscriber
	for step := range 20000 {
		// Waves: a crowd joins, then most of it leaves.
		join := 55
		if step%5000 >= 2500 {
			join = 30
		}
		if len(model) == 0 || rng.IntN(100) < join {
			c := &subscriber{group: r.group(rng.IntN(loops))}
			if r.subscribe("t", c) != c.topic {
				t.Fatal("subscribe returned another topic than the subscriber's")
			}
			model = append(model, c)
		} else {
			i := rng.IntN(len(model))
			c := model[i]
			r.unsubscribe(c)
			if c.topic != nil {
				t.Fatalf("step %d: an unsubscribed subscriber keeps its topic", step)
			}
			model = append(model[:i], model[i+1:]...)
		}
		if step%97 != 0 && step != 19999 {
			continue
		}
		if len(model) == 0 {
			if r.lookup("t") != nil {
				t.Fatal("empty topic kept")
			}
			continue
		}
		tp := r.lookup("t")
		if n := tp.n.Load(); n != int64(len(model)) {
			t.Fatalf("step %d: n %d, want %d", step, n, len(model))
		}
		seen := map[*subscriber]bool{}
		total := 0
		for gi := range tp.loops {
			gr := tp.loops[gi].Load()
			if gr == nil {
				continue
			}
			for pos, c := range gr.list {
				if int(c.pos) != pos || c.group != int32(gi) {
					t.Fatalf("step %d: pos %d group %d at %d of group %d", step, c.pos, c.group, pos, gi)
				}
				seen[c] = true
			}
			if n := int(gr.n.Load()); n != len(gr.list) || tp.on(gi) != int64(n) {
				t.Fatalf("step %d: group %d n %d, list %d", step, gi, n, len(gr.list))
			}
			if c := cap(gr.list); c > keepSlack && 4*len(gr.list) < c {
				t.Fatalf("step %d: group %d keeps %d slots for %d", step, gi, c, len(gr.list))
			}
			total += len(gr.list)
		}
		if total != len(model) {
			t.Fatalf("step %d: %d subscribers in groups, want %d", step, total, len(model))
		}
		for _, c := range model {
			if !seen[c] {
				t.Fatalf("step %d: subscriber missing", step)
			}
		}
	}
}
