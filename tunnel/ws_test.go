//go:build linux

package tunnel

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/upgate/upgate/loop/frame"
)

// newGorilla returns a WebSocket tunnel whose client is a gorilla
// connection.
func newGorilla(t testing.TB, r *Reactor, extra []byte) (*fixture, *websocket.Conn) {
	t.Helper()
	conns := make(chan *websocket.Conn, 1)
	errs := make(chan error, 1)
	f := newWS(t, r, extra, func(addr string) {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/vnc", nil)
		if err != nil {
			errs <- err
			return
		}
		conns <- c
	})
	select {
	case c := <-conns:
		t.Cleanup(func() { c.Close() })
		return f, c
	case err := <-errs:
		t.Fatalf("dial: %v", err)
	}
	return nil, nil
}

// rawClient is a WebSocket client speaking bytes, for frames no library
// would send.
type rawClient struct {
	c  net.Conn
	br *bufio.Reader
}

// newRawWS returns a WebSocket tunnel whose client is a rawClient.
func newRawWS(t testing.TB, r *Reactor, extra []byte) (*fixture, *rawClient) {
	t.Helper()
	conns := make(chan *rawClient, 1)
	f := newWS(t, r, extra, func(addr string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			conns <- nil
			return
		}
		c.Write([]byte("GET /vnc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
		conns <- &rawClient{c: c, br: bufio.NewReader(c)}
	})
	rc := <-conns
	if rc == nil {
		t.Fatal("dial failed")
	}
	t.Cleanup(func() { rc.c.Close() })
	rc.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return f, rc
}

// readFrame reads one server frame.
func (rc *rawClient) readFrame(t testing.TB) (ws.Header, []byte) {
	t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var hb []byte
	for {
		b, err := rc.br.ReadByte()
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		hb = append(hb, b)
		h, n, err := frame.ParseHeader(hb)
		if err == frame.ErrNeedMore {
			continue
		}
		if err != nil || n != len(hb) || h.Masked {
			t.Fatalf("frame header %x: %v", hb, err)
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(rc.br, p); err != nil {
			t.Fatalf("read payload: %v", err)
		}
		return h, p
	}
}

// readClose reads frames up to a close and returns its code.
func (rc *rawClient) readClose(t testing.TB) ws.StatusCode {
	t.Helper()
	for {
		h, p := rc.readFrame(t)
		if h.OpCode != ws.OpClose {
			continue
		}
		if len(p) < 2 {
			return ws.StatusNoStatusRcvd
		}
		return ws.StatusCode(binary.BigEndian.Uint16(p))
	}
}

func TestWSBothWaysWithPrefix(t *testing.T) {
	r := newReactor(t, Options{Reactors: 1})
	// The prefix ends inside a frame, which the client then completes.
	whole := clientFrame(0x00, []byte("pre:"), false)
	f, rc := newRawWS(t, r, append(clientFrame(0x02, []byte("x"), false), whole[:3]...))
	rc.c.Write(whole[3:])
	rc.c.Write(clientFrame(0x80, []byte("hello"), false))
	if got, want := readN(t, f.upstream, 10), "xpre:hello"; got != want {
		t.Errorf("upstream got %q; want %q", got, want)
	}
	f.upstream.Write([]byte("world"))
	h, p := rc.readFrame(t)
	if h.OpCode != ws.OpBinary || !h.Fin || string(p) != "world" {
		t.Errorf("client got %v %q; want a final binary frame %q", h.OpCode, p, "world")
	}
	waitFor(t, "BytesAB 10, BytesBA 5", func() bool { return f.tun.BytesAB() == 10 && f.tun.BytesBA() == 5 })
}

func TestWSPingPong(t *testing.T) {
	r := newReactor(t, Options{Reactors: 1})
	f, c := newGorilla(t, r, nil)
	pongs := make(chan string, 1)
	c.SetPongHandler(func(s string) error { pongs <- s; return nil })
	if err := c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(20*time.Second)); err != nil {
		t.Fatal(err)
	}
	f.upstream.Write([]byte("data"))
	typ, p, err := c.ReadMessage()
	if err != nil || typ != websocket.BinaryMessage || string(p) != "data" {
		t.Fatalf("got %d %q %v; want binary %q", typ, p, err, "data")
	}
	select {
	case got := <-pongs:
		if got != "are you there" {
			t.Errorf("pong: got %q; want %q", got, "are you there")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no pong")
	}
}

func TestWSProtocolErrors(t *testing.T) {
	big := make([]byte, 126)
	for i, c := range []struct {
		frame []byte
		want  ws.StatusCode
	}{
		{clientFrame(0x81, []byte("text"), false), ws.StatusUnsupportedData},
		{clientFrame(0xc2, []byte("rsv1"), false), ws.StatusProtocolError},
		{clientFrame(0x82, []byte("unmasked"), true), ws.StatusProtocolError},
		{clientFrame(0x89, big, false), ws.StatusProtocolError},
		{clientFrame(0x09, nil, false), ws.StatusProtocolError},
		{clientFrame(0x80, []byte("orphan"), false), ws.StatusProtocolError},
		{clientFrame(0x83, nil, false), ws.StatusProtocolError},
		{append(clientFrame(0x02, []byte("a"), false), clientFrame(0x82, []byte("b"), false)...), ws.StatusProtocolError},
		{clientFrame(0x88, []byte{3}, false), ws.StatusProtocolError},
		{clientFrame(0x88, []byte{0x03, 0xed}, false), ws.StatusProtocolError}, // 1005
		{clientFrame(0x88, []byte{0x03, 0xe8, 0xff}, false), ws.StatusInvalidFramePayloadData},
	} {
		r := newReactor(t, Options{Reactors: 1})
		f, rc := newRawWS(t, r, nil)
		rc.c.Write(c.frame)
		if got := rc.readClose(t); got != c.want {
			t.Errorf("#%d: got close %d; want %d", i, got, c.want)
		}
		if res := f.wait(t); !errors.Is(res.err, ErrProtocol) {
			t.Errorf("#%d: got end %v; want %v", i, res.err, ErrProtocol)
		}
	}
}

// TestWSClientClose: A's close is answered with the same code, B sees the
// end of the stream, and the tunnel ends once B is done.
func TestWSClientClose(t *testing.T) {
	r := newReactor(t, Options{Reactors: 1})
	f, rc := newRawWS(t, r, nil)
	rc.c.Write(clientFrame(0x82, []byte("last"), false))
	rc.c.Write(clientFrame(0x88, []byte{0x0f, 0xa0}, false)) // 4000
	if got, want := rc.readClose(t), ws.StatusCode(4000); got != want {
		t.Errorf("got close %d; want %d", got, want)
	}
	f.upstream.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(f.upstream)
	if err != nil || string(got) != "last" {
		t.Errorf("upstream got %q, %v; want %q, EOF", got, err, "last")
	}
	f.upstream.Close()
	if res := f.wait(t); res.err != nil {
		t.Errorf("got end %v; want nil", res.err)
	}
}

// TestWSUpstreamEOF: B's last bytes reach A before a close 1000, and the
// tunnel ends cleanly on A's close reply.
func TestWSUpstreamEOF(t *testing.T) {
	r := newReactor(t, Options{Reactors: 1})
	f, c := newGorilla(t, r, nil)
	f.upstream.Write([]byte("bye"))
	f.upstream.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	typ, p, err := c.ReadMessage()
	if err != nil || typ != websocket.BinaryMessage || string(p) != "bye" {
		t.Fatalf("got %d %q %v; want binary %q", typ, p, err, "bye")
	}
	_, _, err = c.ReadMessage() // gorilla answers the close
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("got %v; want close 1000", err)
	}
	if res := f.wait(t); res.err != nil {
		t.Errorf("got end %v; want nil", res.err)
	}
}

func TestWSUpstreamReset(t *testing.T) {
	r := newReactor(t, Options{Reactors: 1})
	f, rc := newRawWS(t, r, nil)
	f.upstream.(*net.TCPConn).SetLinger(0)
	f.upstream.Close()
	if got, want := rc.readClose(t), ws.StatusInternalServerError; got != want {
		t.Errorf("got close %d; want %d", got, want)
	}
	if res := f.wait(t); res.err == nil {
		t.Errorf("got end nil; want an error")
	}
}

func TestWSClose(t *testing.T) {
	r := newReactor(t, Options{Reactors: 1})
	f, rc := newRawWS(t, r, nil)
	go f.tun.Close()
	if got, want := rc.readClose(t), ws.StatusGoingAway; got != want {
		t.Errorf("got close %d; want %d", got, want)
	}
	if res := f.wait(t); !errors.Is(res.err, ErrClosed) {
		t.Errorf("got end %v; want %v", res.err, ErrClosed)
	}
}

func TestWSShutdown(t *testing.T) {
	r, err := New(Options{Reactors: 1})
	if err != nil {
		t.Fatal(err)
	}
	f, rc := newRawWS(t, r, nil)
	waitFor(t, "1 tunnel", func() bool { return r.Len() == 1 })
	done := make(chan error, 1)
	go func() { done <- r.Shutdown(context.Background()) }()
	if got, want := rc.readClose(t), ws.StatusGoingAway; got != want {
		t.Errorf("got close %d; want %d", got, want)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if res := f.wait(t); !errors.Is(res.err, ErrShutdown) {
		t.Errorf("got end %v; want %v", res.err, ErrShutdown)
	}
}
