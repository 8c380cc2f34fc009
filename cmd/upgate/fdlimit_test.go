//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	gws "github.com/gorilla/websocket"
)

// nofile is the descriptor limit the binary runs under in these tests.
const nofile = 256

// startLimited starts the binary under a limit of nofile descriptors, soft
// and hard, with prlimit(1).
func startLimited(t *testing.T, args ...string) *upgateProc {
	t.Helper()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("needs prlimit (util-linux)")
	}
	return startUpgateVia(t, []string{prlimit, fmt.Sprintf("--nofile=%d:%d", nofile, nofile), "--"}, nil,
		append([]string{"--loops", "2"}, args...)...)
}

// floodUpgate opens n WebSocket connections to addr, eight at a time, and
// returns those upgraded, how many were answered 503, and what else
// happened to the others.
func floodUpgate(addr string, n int) (held []net.Conn, refused, waited int, other []string) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		jobs = make(chan struct{}, n)
	)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	for range 8 {
		wg.Go(func() {
			for range jobs {
				c, status, err := upgradeOnce(addr)
				mu.Lock()
				switch {
				case c != nil:
					held = append(held, c)
				case status == 503:
					refused++
				case isTimeout(err) && status == -1:
					waited++ // the full server paused its listener
				default:
					other = append(other, fmt.Sprintf("status %d, %v", status, err))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return held, refused, waited, other
}

// floodDial is how long a flood's connection waits to be accepted, and
// floodAnswer how long it then waits for an answer: a full server pauses its
// listener, and the SYN (or, for a connection that came in just before the
// pause, its last ACK and the request) is dropped and retried meanwhile.
const (
	floodDial   = 250 * time.Millisecond
	floodAnswer = 2 * time.Second
)

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// upgradeOnce sends a WebSocket handshake for /echo and returns the
// connection on 101, else the status (503 only with Retry-After) or error.
func upgradeOnce(addr string) (net.Conn, int, error) {
	c, err := net.DialTimeout("tcp", addr, floodDial)
	if err != nil {
		return nil, -1, err
	}
	c.SetDeadline(time.Now().Add(floodAnswer))
	fmt.Fprintf(c, "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if isTimeout(err) && head.Len() == 0 && line == "" {
			c.Close()
			return nil, -1, err // connected before the pause, held in it
		}
		if err != nil {
			c.Close()
			return nil, 0, fmt.Errorf("%v after %q", err, head.String())
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	var status int
	fmt.Sscanf(head.String(), "HTTP/1.1 %d", &status)
	switch {
	case status == 101:
		c.SetDeadline(time.Time{})
		return c, status, nil
	case status == 503 && !strings.Contains(head.String(), "\r\nRetry-After: "):
		status = -503
	}
	c.Close()
	return nil, status, nil
}

// TestFDLimitKeepsServing floods the binary with twice as many connections
// as its descriptor limit: it warns at start that max_connections is out of
// reach, refuses the connections it cannot hold with 503, counts and logs
// them, and goes on serving.
func TestFDLimitKeepsServing(t *testing.T) {
	p := startLimited(t)
	if !strings.Contains(p.stderr.String(), "limits.max_connections is more than the file descriptor limit allows") {
		t.Errorf("no warning about max_connections at start:\n%s", p.stderr)
	}
	held, refused, waited, other := floodUpgate(p.addr, 2*nofile)
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	if p.wait(0) >= 0 {
		t.Fatalf("upgate exited during the flood:\n%s", p.stderr)
	}
	if len(other) > 0 || refused+waited == 0 || len(held) < nofile/2 {
		t.Fatalf("%d upgraded, %d refused, %d waited, %d otherwise (first: %v)", len(held), refused, waited, len(other), other)
	}
	t.Logf("%d upgraded, %d refused, %d waited for the paused listener", len(held), refused, waited)
	if waited > 0 && sum(p.metrics(t), "upgate_listener_pauses_total") == 0 {
		t.Errorf("%d connections waited, but upgate_listener_pauses_total is 0", waited)
	}
	if got := sum(p.metrics(t), "upgate_rejections_total", `reason="fd_limit"`); got != float64(refused) {
		t.Errorf("fd_limit rejections %v, want %d", got, refused)
	}
	// Every refusal is logged, on a line a second at most.
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines, total := loggedRefusals(p)
		if total == refused {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d refusals logged on %d lines, want %d:\n%s", total, lines, refused, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The connections held are served, and once they are gone new ones are
	// taken again.
	if _, err := held[0].Write(maskedText("held")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	held[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(held[0], b); err != nil || string(b[2:]) != "held" {
		t.Fatalf("echo on a held connection: %q, %v", b, err)
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	deadline = time.Now().Add(10 * time.Second)
	for sum(p.metrics(t), "upgate_tcp_connections_open") > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the flood's connections did not close")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := mustGorilla(t, p.wsURL("/echo"))
	if err := c.WriteMessage(gws.TextMessage, []byte("after")); err != nil {
		t.Fatal(err)
	}
	if _, m, err := c.ReadMessage(); err != nil || string(m) != "after" {
		t.Fatalf("echo after the flood: %q, %v", m, err)
	}
}

// TestFDExhaustionExitsNonZero turns the guard off: the flood makes an
// accept fail with EMFILE, which stops the listener, and the binary must
// say why and exit 1 for its supervisor to restart it.
func TestFDExhaustionExitsNonZero(t *testing.T) {
	p := startLimited(t, "--fd-reserve", "-1")
	held, _, _, _ := floodUpgate(p.addr, 2*nofile)
	for _, c := range held {
		c.Close()
	}
	if code := p.wait(10 * time.Second); code != exitRuntime {
		t.Fatalf("exit %d, want %d:\n%s", code, exitRuntime, p.stderr)
	}
	rec := waitLog(t, p, "gateway: event loop engine stopped unexpectedly", 0)
	if !strings.Contains(rec["err"], fmt.Sprintf(" of %d file descriptors were in use", nofile)) {
		t.Errorf("the log does not name the descriptors: %q", rec["err"])
	}
	waitLog(t, p, "gateway stopped without a signal", 0)
}

// loggedRefusals adds up the refusals in the binary's log, and counts the
// lines that told them.
func loggedRefusals(p *upgateProc) (lines, total int) {
	all, _ := p.stderr.snapshot()
	for _, l := range all {
		var n int
		if _, err := fmt.Sscanf(logRecord(l)["msg"], "gateway: engine: loop: %d connections refused (503) ", &n); err == nil {
			lines++
			total += n
		}
	}
	return lines, total
}

// maskedText is a masked text frame with a short payload, as a client
// sends it (mask zero: the payload stays as it is).
func maskedText(s string) []byte {
	return append([]byte{0x81, 0x80 | byte(len(s)), 0, 0, 0, 0}, s...)
}
