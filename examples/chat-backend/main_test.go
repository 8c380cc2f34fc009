package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/upgate/upgate/gateway"
	"github.com/upgate/upgate/gateway/natsembed"
)

// TestChat runs the backend against a gateway with NATS embedded and two
// clients in a room.
func TestChat(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	g, err := gateway.New(gateway.Config{
		Listen: "127.0.0.1:0",
		Admin:  "off",
		Loops:  1,
		// alice does not read at the end: her close handshake is cut short.
		Timeouts: gateway.Timeouts{Close: 200 * time.Millisecond},
		Routes:   []gateway.Route{{Path: "/chat/{topic}", Behaviour: gateway.Bridge, Auth: true}},
		NATS:     gateway.NATS{Servers: []string{gateway.Embedded}, Listen: "127.0.0.1:0", NodeID: "n1"},
	}, gateway.WithLogger(quiet), gateway.WithEmbeddedNATS(natsembed.Starter{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{url: g.FleetStatus().NATS, prefix: "upgate", route: "chat", auth: true}, quiet)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	base := "ws://" + g.Addr().String() + "/chat/lobby"
	var alice *websocket.Conn
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The backend answers authorisation once it has subscribed.
		c, resp, err := websocket.DefaultDialer.Dial(base+"?name=alice", nil)
		if err == nil {
			alice = c
			break
		}
		if resp == nil || resp.StatusCode != 503 || time.Now().After(deadline) {
			t.Fatalf("alice: %v %v", err, resp)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer alice.Close()
	if _, resp, err := websocket.DefaultDialer.Dial(base, nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("without a name: %v %v", err, resp)
	}
	bob, _, err := websocket.DefaultDialer.Dial(base+"?name=bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()

	read := func(c *websocket.Conn) string {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, p, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(p)
	}
	say := func(c *websocket.Conn, s string) {
		t.Helper()
		if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	// Until bob hears the room (his subscription reaches NATS
	// asynchronously), skipping the join announcements.
	until := func(c *websocket.Conn, want string) {
		t.Helper()
		for {
			if got := read(c); got == want {
				return
			} else if !strings.HasPrefix(got, "* ") {
				t.Fatalf("got %q while waiting for %q", got, want)
			}
		}
	}
	say(alice, "hello")
	until(bob, "alice: hello")
	until(alice, "alice: hello")
	// Replies travel on the connection's subject and room notices on the
	// topic's, so a join notice may still arrive in between: skip those.
	reply := func(c *websocket.Conn) string {
		t.Helper()
		for {
			if got := read(c); !strings.HasSuffix(got, " joined lobby") {
				return got
			}
		}
	}
	say(bob, "/who")
	if got := reply(bob); got != "in lobby: alice, bob" {
		t.Errorf("/who: %q", got)
	}
	say(alice, "/msg bob psst")
	if got := reply(bob); got != "(private) alice: psst" {
		t.Errorf("private message: %q", got)
	}
	say(bob, "/nick robert")
	// The answer to bob and the room's notice travel apart: either first.
	got := map[string]bool{reply(bob): true, reply(bob): true}
	if !got["you are now robert"] || !got["* bob is now robert"] {
		t.Errorf("/nick: %v", got)
	}
	until(alice, "* bob is now robert")
	_ = bob.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	until(alice, "* robert left")
}
