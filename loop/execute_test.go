package loop

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/loop/frame"
)

// openConns dials n WebSocket connections and returns them with the
// server's handles, in the same order.
func openConns(t *testing.T, s *Server, h *testHandler, n int) ([]*wsClient, []*Conn) {
	t.Helper()
	ws := make([]*wsClient, n)
	cs := make([]*Conn, n)
	for i := range ws {
		ws[i] = dialWS(t, s)
		eventually(t, "OnOpen", func() bool { return h.opened.Load() == int64(i+1) })
		h.mu.Lock()
		cs[i] = h.conns[i]
		h.mu.Unlock()
	}
	return ws, cs
}

func TestLoopIndex(t *testing.T) {
	s, h := startEcho(t)
	if s.Loops() != 2 {
		t.Fatalf("Loops() = %d, want 2", s.Loops())
	}
	if s.CurrentLoop() != -1 {
		t.Fatalf("CurrentLoop() off the loops = %d", s.CurrentLoop())
	}
	if err := s.Execute(0, func() {}); err != ErrNoLoop {
		t.Fatalf("Execute before any connection: %v, want ErrNoLoop", err)
	}
	var onLoop atomic.Int64
	onLoop.Store(-2)
	h.onMessage = func(c *Conn, op ws.OpCode, p []byte) {
		if s.CurrentLoop() == c.LoopIndex() {
			onLoop.Store(int64(c.LoopIndex()))
		}
		_ = c.Send(op, p)
	}
	_, cs := openConns(t, s, h, 4)
	seen := map[int]bool{}
	for _, c := range cs {
		i := c.LoopIndex()
		if i < 0 || i >= s.Loops() {
			t.Fatalf("LoopIndex %d out of [0, %d)", i, s.Loops())
		}
		seen[i] = true
	}
	if len(seen) != 2 {
		t.Fatalf("4 connections on loops %v, want both loops used", seen)
	}
	for _, bad := range []int{-1, 2, 1000} {
		if err := s.Execute(bad, func() {}); err != ErrNoLoop {
			t.Fatalf("Execute(%d): %v, want ErrNoLoop", bad, err)
		}
	}
	w := dialWS(t, s)
	w.Write(text("x"))
	w.ExpectMessage(ws.OpText, []byte("x"))
	if onLoop.Load() < 0 {
		t.Fatal("CurrentLoop in OnMessage is not the connection's LoopIndex")
	}
}

// TestExecuteOrder interleaves sends queued from a goroutine (AsyncWrite)
// with sends made by tasks run with Execute, on connections of both loops:
// every client receives the messages in the order they were issued.
func TestExecuteOrder(t *testing.T) {
	s, h := startEcho(t)
	clients, cs := openConns(t, s, h, 4)
	const n = 3000
	var wrongLoop atomic.Int64
	for i := range n {
		p := []byte(strconv.Itoa(i))
		switch i % 3 {
		case 0: // a task writing to every connection of its loop
			for l := range s.Loops() {
				err := s.Execute(l, func() {
					if s.CurrentLoop() != l {
						wrongLoop.Add(1)
					}
					for _, c := range cs {
						if c.LoopIndex() == l {
							_ = c.Send(ws.OpText, p)
						}
					}
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		case 1:
			for _, c := range cs {
				if err := c.Send(ws.OpText, p); err != nil {
					t.Fatal(err)
				}
			}
		default:
			f := frame.AppendFrame(nil, ws.OpText, true, p)
			for _, c := range cs {
				if err := c.SendFrame(f); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, w := range clients {
		for i := range n {
			w.ExpectMessage(ws.OpText, []byte(strconv.Itoa(i)))
		}
	}
	if wrongLoop.Load() != 0 {
		t.Fatalf("%d tasks ran off their loop", wrongLoop.Load())
	}
	// A task may end a connection after its last message.
	c, w := cs[0], clients[0]
	if err := s.Execute(c.LoopIndex(), func() {
		_ = c.Send(ws.OpText, []byte("last"))
		_ = c.Close(4000, "after the task")
	}); err != nil {
		t.Fatal(err)
	}
	w.ExpectMessage(ws.OpText, []byte("last"))
	f := w.Next()
	if f.Op != ws.OpClose || f.CloseCode() != 4000 {
		t.Fatalf("got %v, want close 4000", f)
	}
}

// TestExecuteClosing: a task's sends to a connection whose close began
// before the task runs are refused (the phase changes when Close is called,
// whatever the task's place in the loop's queue).
func TestExecuteClosing(t *testing.T) {
	s, h := startEcho(t)
	_, cs := openConns(t, s, h, 1)
	c := cs[0]
	if err := c.Close(1000, ""); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	if err := s.Execute(c.LoopIndex(), func() { done <- c.Send(ws.OpText, []byte("late")) }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != ErrClosed {
			t.Fatalf("Send in a task after Close: %v, want ErrClosed", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("task did not run")
	}
}

// TestExecuteAfterShutdown: a stopped server runs no more tasks.
func TestExecuteAfterShutdown(t *testing.T) {
	h := newTestHandler()
	s, err := New(h, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	w := dialWS(t, s)
	eventually(t, "OnOpen", func() bool { return h.opened.Load() == 1 })
	w.CloseNormally()
	eventually(t, "the close", func() bool { return s.open.Load() == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Execute(0, func() { t.Error("task ran after Shutdown") }); !errors.Is(err, ErrServerStopped) {
		t.Fatalf("Execute after Shutdown: %v, want ErrServerStopped", err)
	}
}

// TestHeadRequest: HEAD gets the head GET would get, with its
// Content-Length and no content, so that the next response on the
// connection is read correctly.
func TestHeadRequest(t *testing.T) {
	s, _ := startEcho(t)
	w := dialRaw(t, s)
	w.Write([]byte("HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"))
	status, head := w.ReadHead()
	if status != 200 || !strings.Contains(head, "Content-Length: 3\r\n") || strings.Contains(head, "Connection: close") {
		t.Fatalf("HEAD: %d\n%s", status, head)
	}
	status, head = w.ReadHead()
	if status != 200 || !strings.Contains(head, "Content-Length: 3\r\n") {
		t.Fatalf("GET after HEAD: %d\n%s", status, head)
	}
	body, err := io.ReadAll(w.R)
	if err != nil || string(body) != "ok\n" {
		t.Fatalf("GET body %q, %v", body, err)
	}
}

// TestAcceptedAt: the accept time is the connection's, not the request's.
func TestAcceptedAt(t *testing.T) {
	h := newTestHandler()
	ages := make(chan time.Duration, 1)
	h.onOpen = func(c *Conn) { ages <- time.Since(c.AcceptedAt()) }
	s := startServer(t, h, testOptions())
	before := time.Now()
	w := dialRaw(t, s)
	eventually(t, "the accept", func() bool { return s.open.Load() == 1 })
	// Time passes between the accept and the request, on purpose: the age
	// at OnOpen must include it.
	time.Sleep(100 * time.Millisecond)
	w.Write(upgradeRequest("/ws"))
	w.ExpectSwitching()
	age := <-ages
	if age < 100*time.Millisecond || age > time.Since(before) {
		t.Fatalf("age at OnOpen %v, want from 100ms to %v", age, time.Since(before))
	}
	if !(&Conn{}).AcceptedAt().IsZero() {
		t.Fatal("AcceptedAt of a detached Conn is not zero")
	}
}
