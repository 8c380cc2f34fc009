package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/upgate/upgate/gateway/bus"
	"github.com/upgate/upgate/gateway/natsembed"
)

// fleetRoutes are the routes of the fleet tests' gateways.
func fleetRoutes() []Route {
	return []Route{
		{Path: "/echo", Behaviour: Echo},
		{Path: "/ws/{topic}", Behaviour: PubSub, Publish: true},
		{Path: "/chat/{topic}", Behaviour: Bridge},
		{Path: "/secure/{topic}", Behaviour: Bridge, Subject: "secure", Auth: true},
	}
}

// fleetNode starts a gateway joined to NATS as n says.
func fleetNode(t testing.TB, n NATS, mod ...func(*Config)) *Gateway {
	t.Helper()
	cfg := testConfig(fleetRoutes()...)
	cfg.NATS = n
	for _, m := range mod {
		m(&cfg)
	}
	return startGateway(t, cfg, WithEmbeddedNATS(natsembed.Starter{}))
}

// embedded returns the NATS server g embeds.
func embedded(t testing.TB, g *Gateway) *natsembed.Server {
	t.Helper()
	s, ok := g.bus.Server().(*natsembed.Server)
	if !ok {
		t.Fatalf("got embedded server %T; want a *natsembed.Server", g.bus.Server())
	}
	return s
}

// embeddedNode starts a gateway with an embedded NATS server on ephemeral
// loopback ports, routed to the given cluster URLs.
func embeddedNode(t testing.TB, node string, routes ...string) *Gateway {
	return fleetNode(t, NATS{Servers: []string{Embedded}, NodeID: node, Listen: "127.0.0.1:0",
		ClusterListen: "127.0.0.1:0", Cluster: routes})
}

// backend connects a NATS client to g's embedded server.
func backend(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// reader reads a WebSocket's messages into a channel.
type reader struct {
	c    *websocket.Conn
	msgs chan string
	done chan error
}

func newReader(c *websocket.Conn) *reader {
	r := &reader{c: c, msgs: make(chan string, 1024), done: make(chan error, 1)}
	_ = c.SetReadDeadline(time.Time{})
	go func() {
		for {
			_, p, err := c.ReadMessage()
			if err != nil {
				r.done <- err
				return
			}
			r.msgs <- string(p)
		}
	}()
	return r
}

func (r *reader) next(t testing.TB) string {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case err := <-r.done:
		t.Fatalf("connection ended: %v", err)
	case <-time.After(testTimeout):
		t.Fatal("no message within the test timeout")
	}
	return ""
}

// none checks that nothing arrives for a while.
func (r *reader) none(t testing.TB, wait time.Duration) {
	t.Helper()
	select {
	case m := <-r.msgs:
		t.Fatalf("unexpected message %q", m)
	case <-time.After(wait):
	}
}

// closed waits for the end of the connection and returns the close code.
func (r *reader) closed(t testing.TB) int {
	t.Helper()
	for {
		select {
		case <-r.msgs:
		case err := <-r.done:
			if ce, ok := err.(*websocket.CloseError); ok {
				return ce.Code
			}
			return -1
		case <-time.After(testTimeout):
			t.Fatal("connection not closed within the test timeout")
		}
	}
}

// waitRoutes waits until every embedded server of gs routes to the others.
func waitRoutes(t testing.TB, gs ...*Gateway) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, g := range gs {
		if err := embedded(t, g).WaitRoutes(ctx, len(gs)-1); err != nil {
			t.Fatal(err)
		}
	}
}

// settle publishes probes on topic from publish until every reader got one:
// topic interest travels through the NATS cluster asynchronously. Then it
// publishes a last probe and reads every reader up to it, so that no probe
// still on its way comes after settle returns: each reader gets one
// publisher's messages in order.
func settle(t testing.TB, publish func(string), readers ...*reader) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	got := make([]bool, len(readers))
	for i := 0; ; i++ {
		publish(fmt.Sprintf("probe %d", i))
		all := true
		for j, r := range readers {
			select {
			case <-r.msgs:
				got[j] = true
			case <-time.After(20 * time.Millisecond):
			}
			all = all && got[j]
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic interest never reached every node: %v", got)
		}
	}
	const last = "settled"
	publish(last)
	for _, r := range readers {
		for r.next(t) != last {
		}
	}
}

// waitSubscribed waits until the server at url knows the subscriptions nc
// made, through the cluster's routes: it subscribes nc to a probe subject
// and publishes to it from a client of that server until a probe comes
// back. A server learns a client's subscriptions in the order they were
// made, so the probe's comes last.
func waitSubscribed(t testing.TB, nc *nats.Conn, url string) {
	t.Helper()
	const subject = "test.probe"
	probe, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = probe.Unsubscribe() }()
	other := backend(t, url)
	deadline := time.Now().Add(testTimeout)
	for {
		if err := other.Publish(subject, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := probe.NextMsg(20 * time.Millisecond); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscriptions never reached %s", url)
		}
	}
}

// authBackend answers <prefix>.auth on nc: ?user=NAME is allowed as NAME
// joining topic user.NAME, ?deny=1 is refused, ?slow=1 never answered.
func authBackend(t testing.TB, nc *nats.Conn) (held func() []*nats.Msg) {
	var mu sync.Mutex
	var slow []*nats.Msg
	_, err := nc.Subscribe("upgate.auth", func(m *nats.Msg) {
		var req bus.AuthRequest
		if err := json.Unmarshal(m.Data, &req); err != nil {
			return
		}
		switch {
		case strings.Contains(req.Query, "slow=1"):
			mu.Lock()
			slow = append(slow, m)
			mu.Unlock()
		case strings.Contains(req.Query, "deny=1"):
			_ = m.Respond([]byte(`{"allow":false,"reason":"no entry"}`))
		case strings.HasPrefix(req.Query, "user="):
			name := strings.TrimPrefix(req.Query, "user=")
			reply, _ := json.Marshal(bus.AuthReply{Allow: true, User: name, Topics: []string{"user." + name}})
			_ = m.Respond(reply)
		default:
			_ = m.Respond([]byte(`{"allow":false,"status":401}`))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	return func() []*nats.Msg {
		mu.Lock()
		defer mu.Unlock()
		return slow
	}
}
