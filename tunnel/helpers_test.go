//go:build linux

package tunnel

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// result is what a tunnel's onEnd reported.
type result struct {
	t   *Tunnel
	err error
}

// fixture is a tunnel under test: the test's client conn (side A's peer),
// the upstream conn (side B's peer) and the tunnel's end.
type fixture struct {
	r        *Reactor
	tun      *Tunnel
	client   net.Conn
	upstream net.Conn
	ended    chan result
}

// newReactor starts a Reactor shut down when the test ends.
func newReactor(t testing.TB, o Options) *Reactor {
	t.Helper()
	r, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return r
}

// takeFD returns a duplicate of c's socket and closes c, as the gateway
// does with gnet.Conn.Dup: the socket stays open through the duplicate.
func takeFD(t testing.TB, c net.Conn) int {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatalf("SyscallConn: %v", err)
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil || derr != nil {
		t.Fatalf("dup: %v %v", err, derr)
	}
	c.Close()
	return fd
}

// listen returns a listener on 127.0.0.1 closed when the test ends.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// accept returns the next connection of ln.
func accept(t testing.TB, ln net.Listener) net.Conn {
	t.Helper()
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// upstreamFD connects to a new upstream listener and returns the tunnel's
// fd for B and the upstream's end.
func upstreamFD(t testing.TB) (int, net.Conn) {
	t.Helper()
	ln := listen(t)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial upstream: %v", err)
	}
	return takeFD(t, c), accept(t, ln)
}

// splice starts a tunnel between a (the server end of the test's client)
// and a new upstream.
func (f *fixture) splice(t testing.TB, a int, prefix []byte, mode Mode) {
	t.Helper()
	b, up := upstreamFD(t)
	f.upstream = up
	f.ended = make(chan result, 1)
	tun, err := f.r.Splice(a, b, prefix, mode, func(tu *Tunnel, err error) { f.ended <- result{tu, err} })
	if err != nil {
		t.Fatalf("Splice: %v", err)
	}
	f.tun = tun
}

// newRaw returns a Raw tunnel between a new client and a new upstream.
func newRaw(t testing.TB, r *Reactor, prefix []byte) *fixture {
	t.Helper()
	ln := listen(t)
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	f := &fixture{r: r, client: client}
	f.splice(t, takeFD(t, accept(t, ln)), prefix, Raw)
	return f
}

// newWS returns a WebSocket tunnel: dial connects the client (returning
// what the test uses to speak to it), the test completes the server side of
// the handshake and the bytes read behind the request head, if any, come
// first in the prefix, followed by extra.
func newWS(t testing.TB, r *Reactor, extra []byte, dial func(addr string)) *fixture {
	t.Helper()
	ln := listen(t)
	go dial(ln.Addr().String())
	c := accept(t, ln)
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		t.Fatalf("read handshake: %v", err)
	}
	h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n"
	if _, err := c.Write([]byte(resp)); err != nil {
		t.Fatalf("write 101: %v", err)
	}
	prefix, _ := br.Peek(br.Buffered())
	prefix = append(append([]byte(nil), prefix...), extra...)
	f := &fixture{r: r}
	f.splice(t, takeFD(t, c), prefix, WebSocket)
	return f
}

// wait returns the tunnel's end, failing the test after 20 s.
func (f *fixture) wait(t testing.TB) result {
	t.Helper()
	select {
	case res := <-f.ended:
		return res
	case <-time.After(20 * time.Second):
		t.Fatalf("tunnel %d did not end", f.tun.ID())
		return result{}
	}
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// isClosed reports whether err is the end of a connection (EOF or reset).
func isClosed(err error) bool {
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}
