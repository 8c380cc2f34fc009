package main

import (
	"errors"
	"syscall"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"
)

// TestDrain1000 holds 1 000 connections, half echo and half pubsub, sends
// SIGTERM and checks that every client sees close 1001 and that the process
// exits 0 within the drain timeout.
func TestDrain1000(t *testing.T) {
	const (
		n     = 1000
		drain = 5 * time.Second
	)
	p := startUpgate(t, nil, "--drain-timeout", drain.String())
	half := dialMany(t, p.wsURL("/echo"), n/2)
	conns := append(half, dialMany(t, p.wsURL("/ws/drain"), n-n/2)...)

	// Every connection is open on the server before the signal.
	deadline := time.Now().Add(10 * time.Second)
	for sum(p.metrics(t), "upgate_websocket_connections_open") != n {
		if time.Now().After(deadline) {
			t.Fatalf("upgate_websocket_connections_open = %v, want %d", sum(p.metrics(t), "upgate_websocket_connections_open"), n)
		}
		time.Sleep(50 * time.Millisecond)
	}

	codes := make(chan int, n)
	for _, c := range conns {
		go func() {
			// gorilla answers the server's close frame with its own; then,
			// as applications do, the client closes its socket (the server
			// has sent FIN and lingers until the client's).
			c.SetReadDeadline(time.Now().Add(drain + 10*time.Second))
			for {
				_, _, err := c.ReadMessage()
				if err == nil {
					continue
				}
				c.Close()
				var ce *gws.CloseError
				if errors.As(err, &ce) {
					codes <- ce.Code
				} else {
					codes <- -1 // no close frame
				}
				return
			}
		}()
	}

	start := time.Now()
	p.signal(syscall.SIGTERM)
	code := p.wait(drain + 5*time.Second)
	elapsed := time.Since(start)
	if code != exitOK {
		t.Fatalf("exit status %d after SIGTERM (-1: still running after %v), want 0\n%s", code, elapsed, p.stderr)
	}
	if elapsed > drain {
		t.Errorf("exited %v after SIGTERM, over the %v drain timeout", elapsed, drain)
	}
	got := map[int]int{}
	for i := 0; i < n; i++ {
		select {
		case c := <-codes:
			got[c]++
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d clients saw their connection end: %v", i, n, got)
		}
	}
	if got[gws.CloseGoingAway] != n {
		t.Errorf("close codes seen by the clients: %v, want %d × 1001", got, n)
	}
	waitLog(t, p, "stopped", time.Second)
	t.Logf("%d connections drained in %v", n, elapsed)
}
