package main

import (
	"strings"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
)

// fleetLine waits for the binary's "fleet" log line and returns it.
func (p *upgateProc) fleetLine(t testing.TB) map[string]string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		lines, changed := p.stderr.snapshot()
		for _, l := range lines {
			if rec := logRecord(l); rec["msg"] == "fleet" {
				return rec
			}
		}
		select {
		case <-changed:
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("no fleet line:\n%s", p.stderr)
	return nil
}

// TestFleetBinary: two processes, one with NATS embedded, the other joining
// it: a publish on one reaches the other's subscribers once, a bridge route
// with auth asks a backend, and --route takes the new options.
func TestFleetBinary(t *testing.T) {
	routes := []string{"--route", "/ws/{topic}=pubsub,publish", "--route", "/chat/{topic}=bridge,auth,subject=talk"}
	a := startUpgate(t, nil, append([]string{"--nats", "embedded", "--nats-listen", "127.0.0.1:0", "--node-id", "a"}, routes...)...)
	fa := a.fleetLine(t)
	if fa["node"] != "a" || !strings.HasPrefix(fa["nats"], "nats://127.0.0.1:") {
		t.Fatalf("fleet line %v", fa)
	}
	b := startUpgate(t, []string{"UPGATE_NATS=" + fa["nats"], "UPGATE_NODE_ID=b"}, routes...)
	if fb := b.fleetLine(t); fb["node"] != "b" || fb["servers"] != fa["nats"] {
		t.Fatalf("fleet line %v", fb)
	}

	sub := mustGorilla(t, b.wsURL("/ws/news"))
	msgs := make(chan string, 100)
	go func() {
		for {
			_ = sub.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, p, err := sub.ReadMessage()
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(p)
		}
	}()
	next := func() string {
		t.Helper()
		select {
		case m := <-msgs:
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("no message in 10s")
		}
		return ""
	}
	pub := mustGorilla(t, a.wsURL("/ws/news"))
	// Interest reaches a's server asynchronously: probe until b's
	// subscriber hears, then count exactly.
	deadline := time.Now().Add(10 * time.Second)
probe:
	for {
		if err := pub.WriteMessage(gws.TextMessage, []byte("probe")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-msgs:
			break probe
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("b's subscriber never heard a's publisher")
		}
	}
	// A last probe: the subscriber reads up to it, so that no probe still on
	// its way is taken for what follows (it gets a's messages in order).
	if err := pub.WriteMessage(gws.TextMessage, []byte("settled")); err != nil {
		t.Fatal(err)
	}
	for next() != "settled" {
	}
	if err := pub.WriteMessage(gws.TextMessage, []byte("once")); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "once" {
		t.Fatalf("got %q", got)
	}
	status, _, body := httpDo(t, "POST", "http://"+b.admin+"/publish/news", "from b")
	if status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	if got := next(); got != "from b" {
		t.Fatalf("got %q, want only one copy of each message", got)
	}

	// A backend on a's embedded server authorises and answers.
	nc, err := nats.Connect(fa["nats"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Subscribe("upgate.auth", func(m *nats.Msg) { _ = m.Respond([]byte(`{"allow":true,"user":"zoe"}`)) }); err != nil {
		t.Fatal(err)
	}
	in, _ := nc.SubscribeSync("upgate.in.talk")
	// b joins a's server: once the server has the subscriptions, b's
	// requests and messages reach them.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	chat := mustGorilla(t, b.wsURL("/chat/lobby"))
	if err := chat.WriteMessage(gws.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	m, err := in.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Upgate-User") != "zoe" || m.Header.Get("Upgate-Node") != "b" || !strings.HasPrefix(m.Header.Get("Upgate-Conn"), "b.") {
		t.Fatalf("headers %v", m.Header)
	}
	if err := m.Respond([]byte("hello zoe")); err != nil {
		t.Fatal(err)
	}
	if _, got := readGorilla(t, chat); string(got) != "hello zoe" {
		t.Fatalf("got %q", got)
	}
	mb := b.metrics(t)
	if v := sum(mb, "upgate_bus_connected"); v != 1 {
		t.Errorf("bus_connected %v", v)
	}
	if v := sum(mb, "upgate_auth_requests_total", "result", "allowed"); v != 1 {
		t.Errorf("auth allowed %v", v)
	}
}
