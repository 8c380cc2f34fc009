package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/upgate/upgate/internal/testutil"
)

// TestForwardAndReply: a bridged message reaches a backend on
// <prefix>.in.<route> with the connection's headers, and the backend's
// answer through the reply subject reaches the connection.
func TestForwardAndReply(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	l := newFakeLocal()
	b := newBus(t, Options{URLs: []string{srv.ClientURL()}, Node: "n1"}, l)
	backend := client(t, srv.ClientURL())
	sub, err := backend.SubscribeSync("upgate.in.chat")
	if err != nil {
		t.Fatal(err)
	}
	_ = backend.Flush()

	c := b.NewConn(7, "/chat/{topic}", b.Subjects().In("chat"), "10.0.0.1:5000", "chat.v1", "lobby", "alice", "/chat/lobby")
	l.setOpen(7, nil)
	if err := b.Forward(c, OpText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	m := nextMsg(t, sub)
	if string(m.Data) != "hello" {
		t.Errorf("data %q", m.Data)
	}
	for name, want := range map[string]string{
		HeaderConn: "n1.7", HeaderNode: "n1", HeaderRoute: "/chat/{topic}", HeaderRemote: "10.0.0.1:5000",
		HeaderSubprotocol: "chat.v1", HeaderTopic: "lobby", HeaderUser: "alice",
	} {
		if got := m.Header.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	if m.Header.Get(HeaderOpcode) != "" {
		t.Errorf("text message has %s: %q", HeaderOpcode, m.Header.Get(HeaderOpcode))
	}
	if m.Reply != "upgate.conn.n1.7" {
		t.Errorf("reply subject %q", m.Reply)
	}
	if err := m.Respond([]byte("welcome")); err != nil {
		t.Fatal(err)
	}
	if d := l.next(t); d.kind != "deliver" || d.n != 7 || d.data != "welcome" || d.op != OpText {
		t.Errorf("delivery %+v", d)
	}

	// Binary in both directions.
	if err := b.Forward(c, OpBinary, []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	m = nextMsg(t, sub)
	if m.Header.Get(HeaderOpcode) != "binary" || string(m.Data) != "\x00\x01\x02" {
		t.Errorf("binary message: %v %q", m.Header, m.Data)
	}
	if err := m.RespondMsg(&nats.Msg{Header: nats.Header{"upgate-opcode": {"binary"}}, Data: []byte{0xff}}); err != nil {
		t.Fatal(err)
	}
	if d := l.next(t); d.op != OpBinary || d.data != "\xff" {
		t.Errorf("binary delivery %+v", d)
	}
	eventually(t, "counters", func() bool {
		s := b.Stats()
		return s.Out[KindIn] == 2 && s.In[KindConn] == 2 && s.State == StateConnected
	})
}

// TestConnSubject: messages to <prefix>.conn.<node>.<n>: delivery, close,
// malformed messages and unknown connections, each counted; requests get an
// answer.
func TestConnSubject(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	l := newFakeLocal()
	b := newBus(t, Options{URLs: []string{srv.ClientURL()}, Node: "n1", Prefix: "acme"}, l)
	l.setOpen(1, nil)
	l.setOpen(2, ErrConnClosed)
	l.setOpen(3, ErrSlowConsumer)
	backend := client(t, srv.ClientURL())

	ask := func(subject string, h nats.Header, data string) connReply {
		t.Helper()
		m, err := backend.RequestMsg(&nats.Msg{Subject: subject, Header: h, Data: []byte(data)}, 5*time.Second)
		if err != nil {
			t.Fatalf("request %s: %v", subject, err)
		}
		var r connReply
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatalf("answer %q: %v", m.Data, err)
		}
		return r
	}
	if r := ask("acme.conn.n1.1", nil, "hi"); !r.OK {
		t.Errorf("delivery answered %+v", r)
	}
	if d := l.next(t); d.kind != "deliver" || d.data != "hi" {
		t.Errorf("delivery %+v", d)
	}
	if r := ask("acme.conn.n1.1", nats.Header{HeaderClose: {"4001"}}, "bye"); !r.OK {
		t.Errorf("close answered %+v", r)
	}
	if d := l.next(t); d.kind != "disconnect" || d.code != 4001 || d.reason != "bye" {
		t.Errorf("disconnect %+v", d)
	}
	for _, c := range []struct {
		subject string
		h       nats.Header
		data    string
		reason  int
	}{
		{"acme.conn.n1.9", nil, "x", ReasonUnknownConn},
		{"acme.conn.n1.2", nil, "x", ReasonConnClosed},
		{"acme.conn.n1.3", nil, "x", ReasonSlowConsumer},
		{"acme.conn.n1.1", nil, "\xff", ReasonBadMessage},
		{"acme.conn.n1.1", nats.Header{HeaderOpcode: {"ping"}}, "x", ReasonBadMessage},
		{"acme.conn.n1.1", nats.Header{HeaderClose: {"1005"}}, "", ReasonBadMessage},
		{"acme.conn.n1.1", nats.Header{HeaderClose: {"4000"}}, strings.Repeat("r", 124), ReasonBadMessage},
	} {
		before := b.Stats().Undeliverable[c.reason]
		if r := ask(c.subject, c.h, c.data); r.OK || r.Error != ReasonName(c.reason) {
			t.Errorf("%s %v: answered %+v, want %s", c.subject, c.h, r, ReasonName(c.reason))
		}
		if after := b.Stats().Undeliverable[c.reason]; after != before+1 {
			t.Errorf("%s: %s counted %d -> %d", c.subject, ReasonName(c.reason), before, after)
		}
	}
	l.none(t, 50*time.Millisecond)
}

// TestSendAcrossNodes: a node sends to another node's connection by fleet
// id, with and without waiting; unknown nodes and ids are reported.
func TestSendAcrossNodes(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	la, lb := newFakeLocal(), newFakeLocal()
	a := newBus(t, Options{URLs: []string{srv.ClientURL()}, Node: "a"}, la)
	b := newBus(t, Options{URLs: []string{srv.ClientURL()}, Node: "b"}, lb)
	lb.setOpen(5, nil)
	eventually(t, "both connected", func() bool { return a.Connected() && b.Connected() })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.SendWait(ctx, "b.5", OpText, []byte("sync"), 0); err != nil {
		t.Fatal(err)
	}
	if d := lb.next(t); d.n != 5 || d.data != "sync" {
		t.Errorf("delivery %+v", d)
	}
	if err := a.Send("b.5", OpBinary, []byte("async")); err != nil {
		t.Fatal(err)
	}
	if d := lb.next(t); d.n != 5 || d.data != "async" || d.op != OpBinary {
		t.Errorf("delivery %+v", d)
	}
	if err := a.SendWait(ctx, "b.5", 0, []byte("done"), 1000); err != nil {
		t.Fatal(err)
	}
	if d := lb.next(t); d.kind != "disconnect" || d.code != 1000 || d.reason != "done" {
		t.Errorf("disconnect %+v", d)
	}
	if err := a.SendWait(ctx, "b.6", OpText, nil, 0); !errors.Is(err, ErrUnknownConn) {
		t.Errorf("unknown id: %v", err)
	}
	if err := a.SendWait(ctx, "zz.1", OpText, nil, 0); !errors.Is(err, ErrUnknownConn) {
		t.Errorf("unknown node: %v", err)
	}
	if err := a.Send("nonsense", OpText, nil); !errors.Is(err, ErrBadID) {
		t.Errorf("bad id: %v", err)
	}
	la.none(t, 20*time.Millisecond)
}

// TestTopicInterest: a node receives a topic's messages only while it
// watches the topic, never its own publishes, and names that need escaping
// travel both ways.
func TestTopicInterest(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	la, lb := newFakeLocal(), newFakeLocal()
	a := newBus(t, Options{URLs: []string{srv.ClientURL()}, Node: "a"}, la)
	b := newBus(t, Options{URLs: []string{srv.ClientURL()}, Node: "b"}, lb)
	backend := client(t, srv.ClientURL())

	for _, topic := range []string{"news", "room 1", "a..b"} {
		lb.setSubs(topic, 3)
		la.setSubs(topic, 1)
		b.Watch(topic)
		a.Watch(topic)
		eventually(t, "subscriptions", func() bool { return a.Watching(topic) && b.Watching(topic) })
		_ = a.nc.Flush()
		_ = b.nc.Flush()
		if err := a.Publish(topic, OpText, []byte("from a")); err != nil {
			t.Fatal(err)
		}
		if d := lb.next(t); d.topic != topic || d.data != "from a" {
			t.Errorf("%q: b got %+v", topic, d)
		}
		la.none(t, 30*time.Millisecond) // no echo
		if err := backend.PublishMsg(&nats.Msg{Subject: "upgate.topic." + EscapeTopic(topic), Data: []byte{1}, Header: nats.Header{HeaderOpcode: {"binary"}}}); err != nil {
			t.Fatal(err)
		}
		for _, l := range []*fakeLocal{la, lb} {
			if d := l.next(t); d.topic != topic || d.op != OpBinary || d.data != "\x01" {
				t.Errorf("%q: backend's publish delivered as %+v", topic, d)
			}
		}
	}

	// b loses interest: it unsubscribes, and the server no longer sends it
	// the topic's messages.
	b.Unwatch("news")
	eventually(t, "unsubscribed", func() bool { return !b.Watching("news") })
	_ = b.nc.Flush()
	inBefore := b.Stats().In[KindTopic]
	if err := a.Publish("news", OpText, []byte("after")); err != nil {
		t.Fatal(err)
	}
	_ = backend.Publish("upgate.topic.news", []byte("after"))
	_ = backend.Flush()
	if d := la.next(t); d.data != "after" {
		t.Errorf("a got %+v", d)
	}
	lb.none(t, 50*time.Millisecond)
	if got := b.Stats().In[KindTopic]; got != inBefore {
		t.Errorf("b received %d topic messages after unwatching", got-inBefore)
	}
	if s := b.Stats(); s.Topics != 2 {
		t.Errorf("b subscribed to %d topics, want 2", s.Topics)
	}

	// A watched topic with no local subscriber left is counted.
	la.setSubs("room 1", 0)
	_ = backend.Publish("upgate.topic."+EscapeTopic("room 1"), []byte("late"))
	eventually(t, "no_subscribers counted", func() bool { return a.Stats().Undeliverable[ReasonNoSubscribers] == 1 })
}

// TestEvents: open and close events carry the connection's headers and a
// JSON body.
func TestEvents(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	b := newBus(t, Options{URLs: []string{srv.ClientURL()}, Node: "n1"}, newFakeLocal())
	backend := client(t, srv.ClientURL())
	sub, _ := backend.SubscribeSync("upgate.event.*")
	_ = backend.Flush()
	c := b.NewConn(3, "/echo", "", "127.0.0.1:1234", "", "", "bob", "/echo")
	b.Event(EventOpen, c, 0)
	b.Event(EventClose, c, 1001)
	for _, want := range []struct {
		subject string
		code    int
	}{{"upgate.event.open", 0}, {"upgate.event.close", 1001}} {
		m := nextMsg(t, sub)
		if m.Subject != want.subject || m.Header.Get(HeaderConn) != "n1.3" || m.Header.Get(HeaderUser) != "bob" {
			t.Errorf("event %s %v", m.Subject, m.Header)
		}
		var e Event
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Fatal(err)
		}
		if e.Conn != "n1.3" || e.Node != "n1" || e.Route != "/echo" || e.Code != want.code || e.Remote != "127.0.0.1:1234" || e.Time == "" {
			t.Errorf("event body %+v", e)
		}
		if want.code != 0 && m.Header.Get(HeaderCloseCode) != fmt.Sprint(want.code) {
			t.Errorf("close code header %q", m.Header.Get(HeaderCloseCode))
		}
	}
}

// TestQueueFull: the queue from the loops is bounded and a full one drops
// and counts, never blocks.
func TestQueueFull(t *testing.T) {
	b, err := New(Options{URLs: []string{"nats://127.0.0.1:1"}, QueueLen: 2, Logger: testLogger()}, newFakeLocal())
	if err != nil {
		t.Fatal(err)
	}
	// Not started: nothing drains the queue.
	for i := range 5 {
		err := b.Publish("t", OpText, []byte("x"))
		if (i < 2) != (err == nil) {
			t.Errorf("publish %d: %v", i, err)
		}
	}
	if got := b.stats.undeliverable[ReasonQueueFull].Load(); got != 3 {
		t.Errorf("queue_full = %d, want 3", got)
	}
}

// TestUnreachableCounts: with NATS unreachable from the start, the bus
// starts anyway, keeps messages up to the reconnect buffer and counts the
// rest as bus_down; authorisation is unavailable at once.
func TestUnreachableCounts(t *testing.T) {
	b := newBus(t, Options{URLs: []string{"nats://127.0.0.1:1"}, ReconnectBuf: 4096}, newFakeLocal())
	if s := b.State(); s == StateConnected || s == StateClosed {
		t.Fatalf("state %v", s)
	}
	for range 100 {
		_ = b.Publish("t", OpText, make([]byte, 200))
	}
	eventually(t, "all counted", func() bool {
		s := b.Stats()
		return s.Undeliverable[ReasonBusDown] > 0 && s.Out[KindTopic]+s.Undeliverable[ReasonBusDown] == 100
	})
	done := make(chan AuthResult, 1)
	b.Authorize(&AuthRequest{Conn: "x.1"}, func(r AuthResult) { done <- r })
	if r := <-done; r.Outcome != AuthUnavailable || r.Status != 503 {
		t.Errorf("auth %+v", r)
	}
}

// waitAttempts listens on addr, where the bus's server was, until n
// reconnection attempts came, and checks that they were spaced by the
// back-off: at least least apart, less its 20% jitter.
func waitAttempts(t *testing.T, addr string, n int, least time.Duration) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(testutil.Timeout))
	var at []time.Time
	for len(at) < n {
		c, err := ln.Accept()
		if err != nil {
			t.Fatalf("%d reconnection attempts, want %d: %v", len(at), n, err)
		}
		at = append(at, time.Now())
		_ = c.Close()
	}
	for i := 1; i < n; i++ {
		if gap := at[i].Sub(at[i-1]); gap < least*8/10 {
			t.Fatalf("attempt %d came %v after the one before; want the back-off, at least %v", i+1, gap, least*8/10)
		}
	}
}

// TestServerRestart: the node's NATS server stops and comes back on the
// same port: the bus reports the outage, reconnects with back-off (not in
// a busy loop), resubscribes its connections and topics, and messages flow
// again.
func TestServerRestart(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	addr := srv.Addr().String()
	l := newFakeLocal()
	b := newBus(t, Options{URLs: []string{srv.ClientURL()}, Node: "n1", ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}, l)
	l.setOpen(1, nil)
	l.setSubs("news", 1)
	b.Watch("news")
	eventually(t, "watching", func() bool { return b.Watching("news") })

	srv.Shutdown()
	eventually(t, "outage seen", func() bool { return b.State() == StateReconnecting })
	// Watch and unwatch while down: applied after the reconnection.
	l.setSubs("later", 1)
	b.Watch("later")
	waitAttempts(t, addr, 3, 20*time.Millisecond)
	srv2 := startServer(t, ServerOptions{Listen: addr})
	eventually(t, "reconnected", func() bool { return b.State() == StateConnected })
	// The handlers that count run asynchronously.
	eventually(t, "one disconnect and one reconnect counted", func() bool {
		s := b.Stats()
		return s.Disconnects == 1 && s.Reconnects == 1
	})
	backend := client(t, srv2.ClientURL())
	_ = b.nc.Flush()
	for _, topic := range []string{"news", "later"} {
		if err := backend.Publish("upgate.topic."+topic, []byte("again")); err != nil {
			t.Fatal(err)
		}
		if d := l.next(t); d.topic != topic || d.data != "again" {
			t.Errorf("after restart: %+v", d)
		}
	}
	if err := backend.Publish("upgate.conn.n1.1", []byte("you")); err != nil {
		t.Fatal(err)
	}
	if d := l.next(t); d.n != 1 || d.data != "you" {
		t.Errorf("after restart: %+v", d)
	}
}

// TestBackoff: delays grow exponentially from the minimum to the maximum,
// with jitter.
func TestBackoff(t *testing.T) {
	b, err := New(Options{URLs: []string{"nats://127.0.0.1:1"}, ReconnectMin: 100 * time.Millisecond, ReconnectMax: 2 * time.Second}, newFakeLocal())
	if err != nil {
		t.Fatal(err)
	}
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 5: 1600 * time.Millisecond, 6: 2 * time.Second, 50: 2 * time.Second} {
		for range 20 {
			d := b.backoff(attempt)
			if d < want*8/10 || d > want*12/10 {
				t.Errorf("attempt %d: %v, want %v ± 20%%", attempt, d, want)
			}
		}
	}
}

// TestCluster: three NATS servers form a cluster through routes to the
// first; a topic publish on one node reaches the watchers on the two others
// exactly once.
func TestCluster(t *testing.T) {
	s1 := startServer(t, ServerOptions{Name: "s1", ClusterListen: "127.0.0.1:0"})
	s2 := startServer(t, ServerOptions{Name: "s2", ClusterListen: "127.0.0.1:0", Routes: []string{s1.ClusterURL()}})
	s3 := startServer(t, ServerOptions{Name: "s3", ClusterListen: "127.0.0.1:0", Routes: []string{s1.ClusterURL()}})
	for _, s := range []*testServer{s1, s2, s3} {
		waitRoutes(t, s, 2)
	}
	var locals []*fakeLocal
	var buses []*Bus
	for i, s := range []*testServer{s1, s2, s3} {
		l := newFakeLocal()
		l.setSubs("news", 1)
		b := newBus(t, Options{URLs: []string{s.ClientURL()}, Node: fmt.Sprintf("n%d", i+1)}, l)
		b.Watch("news")
		locals, buses = append(locals, l), append(buses, b)
	}
	for _, b := range buses {
		eventually(t, "watching", func() bool { return b.Watching("news") })
	}
	// Interest propagates through the routes asynchronously: publish until
	// both others have seen a message, then check for duplicates.
	waitInterest(t, s1, "upgate.topic.news", 3)
	for i := range 10 {
		if err := buses[0].Publish("news", OpText, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range locals[1:] {
		for i := range 10 {
			if d := l.next(t); d.data != fmt.Sprintf("m%d", i) {
				t.Fatalf("got %+v, want m%d", d, i)
			}
		}
	}
	for _, l := range locals {
		l.none(t, 50*time.Millisecond)
	}
}

// waitInterest waits until server s knows n subscriptions (local or through
// routes) for subject.
func waitInterest(t testing.TB, s *testServer, subject string, n int) {
	t.Helper()
	eventually(t, "interest in "+subject, func() bool {
		r := s.ns.GlobalAccount().Interest(subject)
		return r >= n
	})
}

// TestNoEchoOfOwnPublishes also covers a backend's publish with the
// gateway's own node id, which is skipped.
func TestOwnNodeHeaderSkipped(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	l := newFakeLocal()
	l.setSubs("news", 1)
	b := newBus(t, Options{URLs: []string{srv.ClientURL()}, Node: "self"}, l)
	b.Watch("news")
	eventually(t, "watching", func() bool { return b.Watching("news") })
	_ = b.nc.Flush()
	backend := client(t, srv.ClientURL())
	_ = backend.PublishMsg(&nats.Msg{Subject: "upgate.topic.news", Header: nats.Header{HeaderNode: {"self"}}, Data: []byte("mine")})
	_ = backend.PublishMsg(&nats.Msg{Subject: "upgate.topic.news", Header: nats.Header{HeaderNode: {"other"}}, Data: []byte("theirs")})
	if d := l.next(t); d.data != "theirs" {
		t.Errorf("got %+v", d)
	}
}
