package gateway

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/upgate/upgate/gateway/bus"
	"github.com/upgate/upgate/gateway/natsembed"
)

// TestFleetThreeNodes: three gateways with embedded NATS servers routed
// into one cluster. A publish on one node reaches the subscribers on the
// others exactly once; a connection is reached by its fleet id from any
// node and from a backend; a bridged message reaches a backend and its
// answer the client; stopping one node ends only its own clients.
func TestFleetThreeNodes(t *testing.T) {
	a := embeddedNode(t, "a")
	seed := a.FleetStatus().Cluster
	b := embeddedNode(t, "b", seed)
	c := embeddedNode(t, "c", seed)
	waitRoutes(t, a, b, c)
	for _, g := range []*Gateway{a, b, c} {
		eventually(t, "bus connected", func() bool { return g.FleetStatus().Connected() })
		if code, _, body := do(t, "GET", publicURL(g, "/readyz"), nil); code != 200 {
			t.Fatalf("readyz %d %q", code, body)
		}
	}

	// Subscribers of "news" on every node; the publisher is a client of a.
	subA, subB, subC := newReader(dial(t, a, "/ws/news", nil)), newReader(dial(t, b, "/ws/news", nil)), newReader(dial(t, c, "/ws/news", nil))
	pub := dial(t, a, "/ws/news", nil)
	pubR := newReader(pub)
	say := func(s string) {
		if err := pub.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, say, subA, subB, subC, pubR)
	const n = 50
	for i := range n {
		say(fmt.Sprintf("m%d", i))
	}
	for _, r := range []*reader{subA, subB, subC, pubR} {
		for i := range n {
			if got := r.next(t); got != fmt.Sprintf("m%d", i) {
				t.Fatalf("got %q, want m%d", got, i)
			}
		}
	}
	for _, r := range []*reader{subA, subB, subC, pubR} {
		r.none(t, 100*time.Millisecond) // exactly once: no echo back through the bus
	}
	// The admin API of b publishes to every node.
	doJSON(t, "POST", adminURL(b, "/publish/news"), []byte("from b's admin"), 200)
	for _, r := range []*reader{subA, subB, subC, pubR} {
		if got := r.next(t); got != "from b's admin" {
			t.Fatalf("got %q", got)
		}
		r.none(t, 30*time.Millisecond)
	}

	// A connection of c, reached by fleet id from a backend on a's server
	// and from a's admin API.
	onC := newReader(dial(t, c, "/echo", nil))
	var id string
	eventually(t, "connection listed", func() bool {
		l := doJSON(t, "GET", adminURL(c, "/connections?route=/echo"), nil, 200)
		conns, _ := l["connections"].([]any)
		if len(conns) == 1 {
			id, _ = conns[0].(map[string]any)["conn"].(string)
		}
		return id != ""
	})
	if !strings.HasPrefix(id, "c.") {
		t.Fatalf("fleet id %q", id)
	}
	nc := backend(t, a.FleetStatus().NATS)
	if err := nc.Publish("upgate.conn."+id, []byte("from a backend")); err != nil {
		t.Fatal(err)
	}
	if got := onC.next(t); got != "from a backend" {
		t.Fatalf("got %q", got)
	}
	doJSON(t, "POST", adminURL(a, "/connections/"+id+"/send"), []byte("from a's admin"), 200)
	if got := onC.next(t); got != "from a's admin" {
		t.Fatalf("got %q", got)
	}
	doJSON(t, "POST", adminURL(a, "/connections/c.999999/send"), []byte("x"), 404)
	doJSON(t, "POST", adminURL(a, "/connections/zz.1/send"), []byte("x"), 404)

	// Bridge: a client of b says something; a backend answers it and the
	// room.
	in, err := nc.SubscribeSync("upgate.in.chat")
	if err != nil {
		t.Fatal(err)
	}
	events, _ := nc.SubscribeSync("upgate.event.*")
	waitSubscribed(t, nc, b.FleetStatus().NATS)
	chatter := dial(t, b, "/chat/lobby", nil)
	chatR := newReader(chatter)
	ev, err := events.NextMsg(testTimeout)
	if err != nil || ev.Subject != "upgate.event.open" || ev.Header.Get(bus.HeaderTopic) != "lobby" {
		t.Fatalf("open event %v %v", ev, err)
	}
	if err := chatter.WriteMessage(websocket.TextMessage, []byte("hello room")); err != nil {
		t.Fatal(err)
	}
	m, err := in.NextMsg(testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	chatID := m.Header.Get(bus.HeaderConn)
	if string(m.Data) != "hello room" || !strings.HasPrefix(chatID, "b.") || m.Header.Get(bus.HeaderNode) != "b" ||
		m.Header.Get(bus.HeaderRoute) != "/chat/{topic}" || m.Header.Get(bus.HeaderTopic) != "lobby" ||
		!strings.HasPrefix(m.Header.Get(bus.HeaderRemote), "127.0.0.1:") || m.Reply != "upgate.conn."+chatID {
		t.Fatalf("bridged message %q %v reply %q", m.Data, m.Header, m.Reply)
	}
	if err := m.Respond([]byte("hello you")); err != nil {
		t.Fatal(err)
	}
	if got := chatR.next(t); got != "hello you" {
		t.Fatalf("got %q", got)
	}
	settle(t, func(s string) { _ = nc.Publish("upgate.topic.lobby", []byte(s)) }, chatR)
	if err := nc.Publish("upgate.topic.lobby", []byte("to the room")); err != nil {
		t.Fatal(err)
	}
	if got := chatR.next(t); got != "to the room" {
		t.Fatalf("got %q", got)
	}
	// A backend closes the connection with a code of its choice.
	if err := nc.PublishMsg(&nats.Msg{Subject: "upgate.conn." + chatID, Header: nats.Header{bus.HeaderClose: {"4001"}}, Data: []byte("bye")}); err != nil {
		t.Fatal(err)
	}
	if code := chatR.closed(t); code != 4001 {
		t.Fatalf("close code %d, want 4001", code)
	}
	ev, err = events.NextMsg(testTimeout)
	if err != nil || ev.Subject != "upgate.event.close" || ev.Header.Get(bus.HeaderConn) != chatID {
		t.Fatalf("close event %v %v", ev, err)
	}

	// Stopping b ends b's clients only.
	if err := shutdownNow(b); err != nil {
		t.Fatal(err)
	}
	if code := subB.closed(t); code != 1001 {
		t.Fatalf("b's subscriber: close %d, want 1001", code)
	}
	say("after b")
	for _, r := range []*reader{subA, subC, pubR} {
		if got := r.next(t); got != "after b" {
			t.Fatalf("got %q", got)
		}
	}
	onC.none(t, 10*time.Millisecond)
	doJSON(t, "POST", adminURL(a, "/connections/"+id+"/send"), []byte("still here"), 200)
	if got := onC.next(t); got != "still here" {
		t.Fatalf("got %q", got)
	}
	if v := metric(t, a, `upgate_bus_connected{node="a"}`); v != 1 {
		t.Errorf("a's bus_connected %v", v)
	}
}

// TestFleetStatus: what a node tells of its place in the fleet, embedding
// NATS or joining a server, and without NATS.
func TestFleetStatus(t *testing.T) {
	if s := startGateway(t, testConfig()).FleetStatus(); s != (FleetStatus{}) {
		t.Errorf("without NATS: got %+v; want the zero FleetStatus", s)
	}
	s := embeddedNode(t, "a").FleetStatus()
	if s.Node != "a" || s.Prefix != DefaultNATSPrefix || s.Bus != "connected" || !s.Connected() ||
		!strings.HasPrefix(s.NATS, "nats://127.0.0.1:") || !strings.HasPrefix(s.Cluster, "nats://127.0.0.1:") {
		t.Errorf("embedding NATS: got %+v; want node a, connected, with its server's URLs", s)
	}
	b := fleetNode(t, NATS{Servers: []string{s.NATS}, NodeID: "b", Prefix: "acme"})
	eventually(t, "b connected", func() bool { return b.FleetStatus().Connected() })
	if s := b.FleetStatus(); s.Node != "b" || s.Prefix != "acme" || s.NATS != "" || s.Cluster != "" {
		t.Errorf("joining a server: got %+v; want node b, prefix acme, no server of its own", s)
	}
}

// TestFleetNATSRestart: the NATS server a gateway talks to stops and comes
// back. Meanwhile the gateway serves its local connections, /readyz says
// the bus is down, and what could not be forwarded is counted; once back,
// the gateway's subscriptions are in place again.
func TestFleetNATSRestart(t *testing.T) {
	srv, err := natsembed.Start(bus.ServerOptions{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if srv.Running() {
			srv.Shutdown()
		}
	}()
	addr := srv.Addr().String()
	g := fleetNode(t, NATS{Servers: []string{srv.ClientURL()}, NodeID: "a", Queue: 1 << 10})
	eventually(t, "bus connected", func() bool { return g.FleetStatus().Connected() })
	sub := newReader(dial(t, g, "/ws/news", nil))
	nc := backend(t, srv.ClientURL())
	settle(t, func(s string) { _ = nc.Publish("upgate.topic.news", []byte(s)) }, sub)

	srv.Shutdown()
	eventually(t, "outage seen", func() bool { return !g.FleetStatus().Connected() })
	if code, _, body := do(t, "GET", publicURL(g, "/readyz"), nil); code != 503 || !strings.Contains(string(body), "bus reconnecting") {
		t.Errorf("readyz while NATS is down: %d %q", code, body)
	}
	r := doJSON(t, "GET", adminURL(g, "/readyz"), nil, 503)
	if r["bus"] != "reconnecting" {
		t.Errorf("admin readyz %v", r)
	}
	// Local service goes on.
	echo := dial(t, g, "/echo", nil)
	if err := echo.WriteMessage(websocket.TextMessage, []byte("still")); err != nil {
		t.Fatal(err)
	}
	expectMessage(t, echo, websocket.TextMessage, []byte("still"))
	doJSON(t, "POST", adminURL(g, "/publish/news"), []byte("local only"), 200)
	if got := sub.next(t); got != "local only" {
		t.Fatalf("got %q", got)
	}
	// A send to another node's connection cannot be made now.
	doJSON(t, "POST", adminURL(g, "/connections/b.1/send"), []byte("x"), 503)

	srv2, err := natsembed.Start(bus.ServerOptions{Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Shutdown()
	eventually(t, "reconnected", func() bool { return g.FleetStatus().Connected() })
	nc2 := backend(t, srv2.ClientURL())
	settle(t, func(s string) { _ = nc2.Publish("upgate.topic.news", []byte(s)) }, sub)
	if err := nc2.Publish("upgate.topic.news", []byte("back")); err != nil {
		t.Fatal(err)
	}
	if got := sub.next(t); got != "back" {
		t.Fatalf("got %q", got)
	}
	if code, _, _ := do(t, "GET", publicURL(g, "/readyz"), nil); code != 200 {
		t.Errorf("readyz after the reconnection: %d", code)
	}
	eventually(t, "one disconnect and one reconnect counted", func() bool {
		return metric(t, g, "upgate_bus_reconnects_total") == 1 && metric(t, g, "upgate_bus_disconnects_total") == 1
	})
}

// TestFleetAuth: a route with auth completes its handshakes only on the
// authorisation service's yes; no, silence and no service are refused.
func TestFleetAuth(t *testing.T) {
	g := fleetNode(t, NATS{Servers: []string{Embedded}, Listen: "127.0.0.1:0", NodeID: "n1", AuthTimeout: 300 * time.Millisecond})
	url := g.FleetStatus().NATS

	// No service yet: 503 at once.
	resp := dialStatus(t, g, "/secure/room?user=alice", nil, 503)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}

	nc := backend(t, url)
	authBackend(t, nc)
	in, _ := nc.SubscribeSync("upgate.in.secure")
	_ = nc.Flush()

	h := http.Header{"Authorization": {"Bearer t0k3n"}}
	conn := dial(t, g, "/secure/room?user=alice", h)
	cr := newReader(conn)
	if err := conn.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	m, err := in.NextMsg(testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(bus.HeaderUser) != "alice" || m.Header.Get(bus.HeaderTopic) != "room" {
		t.Errorf("bridged headers %v", m.Header)
	}
	// The topic the answer named: user.alice.
	eventually(t, "joined user.alice", func() bool { return g.Subscribers("user.alice") == 1 && g.bus.Watching("user.alice") })
	if err := nc.Publish("upgate.topic.user.alice", []byte("just alice")); err != nil {
		t.Fatal(err)
	}
	if got := cr.next(t); got != "just alice" {
		t.Fatalf("got %q", got)
	}
	info := doJSON(t, "GET", adminURL(g, "/connections?topic=user.alice"), nil, 200)
	if info["matched"].(float64) != 1 {
		t.Errorf("listing of user.alice: %v", info)
	}

	dialStatus(t, g, "/secure/room?deny=1", nil, 403)
	dialStatus(t, g, "/secure/room?nobody", nil, 401)
	start := time.Now()
	dialStatus(t, g, "/secure/room?slow=1", nil, 401)
	if el := time.Since(start); el < 250*time.Millisecond || el > 5*time.Second {
		t.Errorf("timeout answered after %v, want about 300ms", el)
	}
	for _, res := range []string{"allowed", "denied", "timeout", "unavailable"} {
		if v := metric(t, g, `upgate_auth_requests_total{result="`+res+`"}`); v < 1 {
			t.Errorf("auth %s counted %v", res, v)
		}
	}
	if v := metric(t, g, `upgate_rejections_total{reason="authorize"}`); v != 4 {
		t.Errorf("rejections %v, want 4", v)
	}
	// The slot of every refused handshake was given back.
	if got := g.open.Load(); got != 1 {
		t.Errorf("%d connection slots taken, want 1", got)
	}
}

// TestFleetAuthLoopResponsive: a thousand handshakes wait for authorisation
// on a one-loop gateway while an echo connection on the same loop keeps
// answering with low latency; frames a client sends before its 101 come
// through after it.
func TestFleetAuthLoopResponsive(t *testing.T) {
	g := fleetNode(t, NATS{Servers: []string{Embedded}, Listen: "127.0.0.1:0", NodeID: "n1", AuthTimeout: 20 * time.Second},
		func(c *Config) { c.Loops = 1; c.Timeouts.Handshake = 30 * time.Second })
	nc := backend(t, g.FleetStatus().NATS)
	held := authBackend(t, nc)
	in, _ := nc.SubscribeSync("upgate.in.secure")
	in.SetPendingLimits(-1, -1)
	_ = nc.Flush()
	echo := dial(t, g, "/echo", nil)

	const n = 1000
	req := "GET /secure/r?slow=1 HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	early := maskedFrame(0x1, []byte("sent before the 101"))
	clients := make([]net.Conn, n)
	for i := range clients {
		c, err := net.DialTimeout("tcp", g.Addr().String(), testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if _, err := c.Write(append([]byte(req), early...)); err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	eventually(t, "all waiting", func() bool { return len(held()) == n })
	if v := metric(t, g, "upgate_handshakes_waiting"); v != n {
		t.Errorf("handshakes_waiting %v", v)
	}
	rtts := make([]time.Duration, 0, 300)
	for range 300 {
		start := time.Now()
		if err := echo.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		expectMessage(t, echo, websocket.TextMessage, []byte("ping"))
		rtts = append(rtts, time.Since(start))
	}
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	p50, p99 := rtts[len(rtts)/2], rtts[len(rtts)*99/100]
	t.Logf("echo round trip on the loop while %d handshakes wait for authorisation: p50 %v, p99 %v", n, p50, p99)
	if p99 > 100*time.Millisecond {
		t.Errorf("echo p99 %v while handshakes wait", p99)
	}
	for _, m := range held() {
		_ = m.Respond([]byte(`{"allow":true}`))
	}
	for _, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(testTimeout))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 101 ") {
			t.Fatalf("handshake answered %q, %v", line, err)
		}
	}
	for i := range n {
		m, err := in.NextMsg(testTimeout)
		if err != nil {
			t.Fatalf("bridged early frames: %d of %d: %v", i, n, err)
		}
		if string(m.Data) != "sent before the 101" {
			t.Fatalf("bridged %q", m.Data)
		}
	}
	if g.Connections() != n+1 {
		t.Errorf("%d connections, want %d", g.Connections(), n+1)
	}
}

// TestFleetConfig: what the configuration refuses.
func TestFleetConfig(t *testing.T) {
	for _, c := range []struct {
		mod func(*Config)
		key string
	}{
		{func(c *Config) { c.Routes = []Route{{Path: "/b", Behaviour: Bridge}} }, "routes[0].behaviour"},
		{func(c *Config) { c.Routes = []Route{{Path: "/e", Auth: true}} }, "routes[0].auth"},
		{func(c *Config) {
			c.NATS.Servers = []string{Embedded}
			c.Routes = []Route{{Path: "/v1.0/x", Behaviour: Bridge}}
		}, "routes[0].subject"},
		{func(c *Config) {
			c.NATS.Servers = []string{Embedded}
			c.Routes = []Route{{Path: "/e", Subject: "x"}}
		}, "routes[0].subject"},
		{func(c *Config) { c.NATS.Servers = []string{Embedded} }, "nats.servers[0]"}, // without WithEmbeddedNATS
		{func(c *Config) { c.NATS.Servers = []string{Embedded, "nats://x:4222"} }, "nats.servers[0]"},
		{func(c *Config) { c.NATS.Servers = []string{"http://x"} }, "nats.servers[0]"},
		{func(c *Config) {
			c.NATS.Servers = []string{"nats://x:4222"}
			c.NATS.Cluster = []string{"nats://y:6222"}
		}, "nats.cluster"},
		{func(c *Config) { c.NATS.Servers = []string{Embedded}; c.NATS.Prefix = "a..b" }, "nats.prefix"},
		{func(c *Config) { c.NATS.Servers = []string{Embedded}; c.NATS.NodeID = "a.b" }, "nats.node_id"},
		{func(c *Config) { c.NATS.Servers = []string{Embedded}; c.NATS.Listen = "nowhere" }, "nats.listen"},
		{func(c *Config) { c.NATS.Servers = []string{Embedded}; c.NATS.AuthTimeout = -time.Second }, "nats.auth_timeout"},
	} {
		cfg := testConfig()
		c.mod(&cfg)
		_, err := New(cfg, WithLogger(quietLogger()))
		ce, ok := err.(*ConfigError)
		if !ok || ce.Key != c.key {
			t.Errorf("want an error naming %s, got %v", c.key, err)
		}
	}
}
