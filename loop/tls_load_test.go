//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// The sizes of TestTLSBehaviourIdleAndFlood: about 1 300 connections at
// most, each with both ends in the test's process.
const (
	tlsIdleConns  = 1000 // upgraded TLS connections that stay silent
	tlsFloodConns = 300  // connections that never finish their TLS handshake
	tlsFloodSlots = 100  // MaxTLSHandshakes: the flood goes beyond it
	tlsRTTSamples = 200  // round trips measured before and during the flood
)

// idleTLS is a client connection past the 101 that sends nothing.
type idleTLS struct {
	c  *tls.Conn
	br *bufio.Reader
}

// TestTLSBehaviourIdleAndFlood holds a thousand idle TLS WebSocket
// connections, then floods the listener with connections that send nothing
// or half a ClientHello, beyond the handshake slots. Meanwhile one echo
// connection keeps its round-trip time (against its own baseline, measured
// before); no flooding connection takes a handshake slot (a handshake
// begins with a whole ClientHello), so none is refused, and every one is
// closed by the handshake timeout; a new client's handshake goes through;
// the idle connections still answer pings, and a drain closes them all
// with 1001.
func TestTLSBehaviourIdleAndFlood(t *testing.T) {
	o := testOptions()
	o.HandshakeTimeout = 2 * time.Second // also bounds each idle connection's own handshake, on a loaded machine
	o.MaxTLSHandshakes = tlsFloodSlots
	o.DrainTimeout = testTimeout
	s := overTLS.start(t, newTestHandler(), o)
	addr := s.Addr().String()

	echo := s.dialWS(t)
	base := echoRTT(echo, tlsRTTSamples, nil)

	idle := dialIdleTLS(t, s, tlsIdleConns)
	eventually(t, "every connection to be open", func() bool {
		return s.Stats().WebSocketsOpen == tlsIdleConns+1
	})
	st := s.Stats()
	total0, refused0 := st.ConnsTotal, st.TLSRefused

	// The flood: even clients send nothing, odd ones half a ClientHello (a
	// record header announcing 512 bytes, and 10 of them).
	partial := append([]byte{22, 3, 1, 2, 0}, make([]byte, 10)...)
	flood := make(chan error, tlsFloodConns)
	for i := range tlsFloodConns {
		go func() { flood <- floodClient(addr, partial[:len(partial)*(i%2)]) }()
	}
	inPlace := func() bool {
		return s.Stats().ConnsTotal-total0 == tlsFloodConns
	}
	during := echoRTT(echo, tlsRTTSamples, inPlace)
	eventually(t, "every flooding connection to be accepted", inPlace)

	bp, dp := p99(base), p99(during)
	t.Logf("echo round trip p99: %v alone, %v with %d idle connections and %d stalled handshakes", bp, dp, tlsIdleConns, tlsFloodConns)
	if limit := 10*bp + 50*time.Millisecond; dp > limit {
		t.Errorf("echo round trip p99 during the flood: got %v; want under %v (10 x %v + 50ms)", dp, limit, bp)
	}
	var failed int
	for range tlsFloodConns {
		if err := <-flood; err != nil {
			if failed++; failed <= 5 {
				t.Errorf("flooding connection: %v", err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d flooding connections were not closed as they should", failed, tlsFloodConns)
	}
	st = s.Stats()
	refused := st.TLSRefused - refused0
	timedOut := uint64(tlsFloodConns)
	if refused != 0 {
		t.Errorf("refused: got %d; want none (no flooding connection sent a whole ClientHello)", refused)
	}
	eventually(t, "the handshake timeouts and failures to be counted", func() bool {
		st := s.Stats()
		return st.HandshakeTimeouts == timedOut && st.TLSFailures == timedOut
	})
	t.Logf("flood: %d closed by the handshake timeout, none refused", timedOut)

	// The slots came back: a new connection completes its handshake.
	late := s.dialWS(t)
	late.Write(msg(ws.OpText, []byte("after the flood")))
	late.ExpectMessage(ws.OpText, []byte("after the flood"))
	late.CloseNormally()
	_ = echo.Conn.SetDeadline(time.Now().Add(testTimeout))
	echo.CloseNormally()

	// Every idle connection is alive.
	pingFrame := msg(ws.OpPing, []byte("still there?"))
	for i, c := range idle {
		_ = c.c.SetDeadline(time.Now().Add(testTimeout))
		if _, err := c.c.Write(pingFrame); err != nil {
			t.Fatalf("idle #%d: ping: %v", i, err)
		}
	}
	for i, c := range idle {
		f, err := readServerFrame(c.br)
		if err != nil || f.Op != ws.OpPong || string(f.Payload) != "still there?" {
			t.Fatalf("idle #%d: got %v, %v; want the pong", i, f, err)
		}
	}

	// The drain sends each 1001; each answers it, and Shutdown returns
	// once they all closed.
	eventually(t, "only the idle connections to be open", func() bool {
		return s.Stats().WebSocketsOpen == tlsIdleConns
	})
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	reply := msg(ws.OpClose, closePayload(ws.StatusGoingAway, ""))
	for i, c := range idle {
		f, err := readServerFrame(c.br)
		if err != nil || f.Op != ws.OpClose || f.CloseCode() != ws.StatusGoingAway {
			t.Fatalf("idle #%d: got %v, %v; want close 1001", i, f, err)
		}
		if _, err := c.c.Write(reply); err != nil {
			t.Fatalf("idle #%d: close reply: %v", i, err)
		}
	}
	for i, c := range idle {
		if n, err := c.br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("idle #%d: got %d bytes, %v; want EOF", i, n, err)
		}
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Shutdown did not return")
	}
	if got := s.Stats().Closes[ws.StatusGoingAway]; got != tlsIdleConns {
		t.Fatalf("closes with 1001: got %d; want %d", got, tlsIdleConns)
	}
}

// echoRTT measures round trips of a 32-byte message on w: n of them, and
// then on until done (when not nil) holds.
func echoRTT(w *wsClient, n int, done func() bool) []time.Duration {
	w.T.Helper()
	p := []byte("round trip, round trip, round tr")
	frame := msg(ws.OpBinary, p)
	_ = w.Conn.SetDeadline(time.Now().Add(testTimeout))
	var rtt []time.Duration
	for len(rtt) < n || (done != nil && !done()) {
		start := time.Now()
		w.Write(frame)
		w.ExpectMessage(ws.OpBinary, p)
		rtt = append(rtt, time.Since(start))
	}
	return rtt
}

// p99 returns the 99th percentile of d.
func p99(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[(len(d)-1)*99/100]
}

// dialIdleTLS opens n upgraded TLS connections to s, a few at a time, and
// closes them when the test ends.
func dialIdleTLS(t *testing.T, s abServer, n int) []idleTLS {
	t.Helper()
	conns := make([]idleTLS, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := idleClient(s.Addr().String(), s.cli)
			if err != nil {
				errs <- fmt.Errorf("idle #%d: %w", i, err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c.c != nil {
				_ = c.c.Close()
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return conns
}

// idleClient dials addr over TLS and upgrades on /ws.
func idleClient(addr string, cfg *tls.Config) (idleTLS, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: testTimeout}, "tcp", addr, cfg)
	if err != nil {
		return idleTLS{}, err
	}
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := c.Write(upgradeRequest("/ws")); err != nil {
		_ = c.Close()
		return idleTLS{}, err
	}
	br := bufio.NewReaderSize(c, 4<<10)
	status, err := br.ReadString('\n')
	for err == nil {
		var line string
		if line, err = br.ReadString('\n'); line == "\r\n" {
			break
		}
	}
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 101 ") {
		_ = c.Close()
		return idleTLS{}, fmt.Errorf("handshake: got %q, %v; want a 101", status, err)
	}
	return idleTLS{c, br}, nil
}

// floodClient connects to addr, sends first, and expects the server to
// close the connection without a byte, well before testTimeout.
func floodClient(addr string, first []byte) error {
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	if len(first) > 0 {
		_, _ = c.Write(first) // a refused connection may be reset already
	}
	b, err := io.ReadAll(c)
	var ne net.Error
	switch {
	case len(b) != 0:
		return fmt.Errorf("got %q; want nothing", b)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("still open after %v", testTimeout)
	case err != nil && !isReset(err):
		return fmt.Errorf("got %v; want EOF or a reset", err)
	}
	return nil
}
