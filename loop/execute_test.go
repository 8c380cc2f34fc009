//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/loop/frame"
)

// openConns dials n WebSocket connections and returns them with the
// server's handles, in the same order.
func openConns(t *testing.T, s *Server, h *testHandler, n int) ([]*wsClient, []Conn) {
	t.Helper()
	ws := make([]*wsClient, n)
	cs := make([]Conn, n)
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
}

// TestExecuteBeforeFirstConnection: Start reaches every loop, so a task
// runs on a loop that never had a connection, and one queued before Start
// runs once the loops run. The connections that reached the loops are not
// the Handler's and count nowhere.
func TestExecuteBeforeFirstConnection(t *testing.T) {
	h := newTestHandler()
	o := testOptions()
	o.NumLoops = 3
	s, err := New(h, o)
	if err != nil {
		t.Fatal(err)
	}
	early := make(chan struct{})
	if err := s.Execute(2, func() { close(early) }); err != nil {
		t.Fatalf("Execute before Start: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	if n := s.unbound(); n != 0 {
		t.Fatalf("%d loops not reached by Start", n)
	}
	ran := make(chan int, s.Loops())
	for i := range s.Loops() {
		if err := s.Execute(i, func() { ran <- i }); err != nil {
			t.Fatalf("Execute(%d): %v", i, err)
		}
	}
	seen := map[int]bool{}
	for range s.Loops() {
		select {
		case i := <-ran:
			seen[i] = true
		case <-time.After(testTimeout):
			t.Fatalf("tasks ran on loops %v of %d", seen, s.Loops())
		}
	}
	select {
	case <-early:
	case <-time.After(testTimeout):
		t.Fatal("the task queued before Start did not run")
	}
	st := s.Stats()
	if st.ConnsTotal != 0 || st.ConnsOpen != 0 || s.open.Load() != 0 || h.opened.Load() != 0 {
		t.Fatalf("probes counted: total %d, open %d/%d, OnOpen %d", st.ConnsTotal, st.ConnsOpen, s.open.Load(), h.opened.Load())
	}
	// The loops are gnet's: three connections of round robin land on three
	// different ones.
	_, cs := openConns(t, s, h, 3)
	loops := map[int]bool{}
	for _, c := range cs {
		loops[c.LoopIndex()] = true
	}
	if len(loops) != 3 {
		t.Fatalf("3 connections on loops %v, want 3 loops", loops)
	}
}

// TestExecuteOrder interleaves sends queued from a goroutine (AsyncWrite)
// with sends made by tasks run with Execute, on connections of both loops:
// every client receives the messages in the order they were issued.
func TestExecuteOrder(t *testing.T) {
	s, h := startEcho(t)
	clients, cs := openConns(t, s, h, 4)
	const n = 3000
	for i := range n {
		p := []byte(strconv.Itoa(i))
		switch i % 3 {
		case 0: // a task writing to every connection of its loop
			for l := range s.Loops() {
				err := s.Execute(l, func() {
					for _, c := range cs {
						if c.LoopIndex() == l {
							_ = c.Write(ws.OpText, p)
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
	// A task may end a connection after its last message.
	c, w := cs[0], clients[0]
	if err := s.Execute(c.LoopIndex(), func() {
		_ = c.Write(ws.OpText, []byte("last"))
		_ = c.WriteClose(4000, "after the task")
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
	if err := s.Execute(c.LoopIndex(), func() { done <- c.Write(ws.OpText, []byte("late")) }); err != nil {
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
	h.onOpen = func(c Conn) { ages <- time.Since(c.AcceptedAt()) }
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

// TestReachLoopsWildcard: a listener on every address is reached through
// loopback, IPv4 or IPv6.
func TestReachLoopsWildcard(t *testing.T) {
	for i, addr := range []string{"tcp://0.0.0.0:0", "tcp://:0"} {
		o := testOptions()
		o.Addr = addr
		o.NumLoops = 3
		s, err := New(newTestHandler(), o)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatalf("#%d: %s: %v", i, addr, err)
		}
		if n := s.unbound(); n != 0 {
			t.Errorf("#%d: %s (%v): %d loops not reached; want 0", i, addr, s.Addr(), n)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatalf("#%d: %v", i, err)
		}
	}
}
