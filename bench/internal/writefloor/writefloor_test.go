package writefloor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// start serves s with o on 127.0.0.1; with sndbuf > 0, its sockets'
// send buffers are that small.
func start(t *testing.T, o Options, sndbuf int) (string, *Server) {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error { return bufSize(c, unix.SO_SNDBUF, sndbuf) }}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-served; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve: got %v; want ErrClosed", err)
		}
	})
	return ln.Addr().String(), s
}

// bufSize sets socket option opt (SO_SNDBUF, SO_RCVBUF) of c to n, when
// n > 0.
func bufSize(c syscall.RawConn, opt, n int) error {
	if n <= 0 {
		return nil
	}
	var err error
	if cerr := c.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, n) }); cerr != nil {
		return cerr
	}
	return err
}

// waitFor polls cond until it holds or 10 s have passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("%s: not after 10 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNewOptions(t *testing.T) {
	for i, o := range []Options{
		{Path: "/a", PubPath: "/a"},
		{Writers: MaxWriters + 1},
		{Writers: -1},
		{Queue: -1},
		{MaxMessage: -1},
		{MaxHead: 10},
		{HandshakeTimeout: -time.Second},
	} {
		if s, err := New(o); err == nil || !strings.HasPrefix(err.Error(), "writefloor: ") {
			t.Errorf("#%d: got %v; want an error", i, err)
			if s != nil {
				_ = s.Close()
			}
		}
	}
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o := s.opts; o.Path != DefaultPath || o.PubPath != DefaultPubPath || o.Writers != 1 || o.Queue != DefaultQueue ||
		o.MaxMessage != DefaultMaxMessage || o.MaxHead != DefaultMaxHead || o.HandshakeTimeout != DefaultHandshakeTimeout {
		t.Errorf("got %+v; want the defaults", o)
	}
	_ = s.Close()
}

func TestRejects(t *testing.T) {
	addr, s := start(t, Options{HandshakeTimeout: 200 * time.Millisecond}, 0)
	ws := "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
	for i, c := range []struct {
		req    string
		status int
	}{
		{"GET /nope HTTP/1.1\r\nHost: x\r\n" + ws + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 404},
		{"GET /ws/bench HTTP/1.1\r\nHost: x\r\n" + ws + "\r\n", 400},
		{"GET /ws/bench HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"GET /ws/bench HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", DefaultMaxHead) + "\r\n\r\n", 400},
		{"GET /ws/bench HTTP/1.1\r\nHost: x\r\n", 0}, // unfinished: times out
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(c.req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		switch {
		case c.status == 0 && err == nil:
			t.Errorf("#%d: got %s; want the connection closed", i, resp.Status)
		case c.status != 0 && err != nil:
			t.Errorf("#%d: got %v; want %d", i, err, c.status)
		case c.status != 0 && resp.StatusCode != c.status:
			t.Errorf("#%d: got %s; want %d", i, resp.Status, c.status)
		}
		_ = conn.Close()
	}
	waitFor(t, "counters", func() bool { st := s.Stats(); return st.Rejected == 4 && st.Unfinished == 1 })
	if st := s.Stats(); st.Subscribers != 0 || st.Publishers != 0 {
		t.Errorf("got %+v; want no subscriber, no publisher", st)
	}
}

// TestEAGAIN fills the send buffer of a subscriber that never reads: the
// writer counts what the socket refused and goes on, never spinning on it.
func TestEAGAIN(t *testing.T) {
	addr, s := start(t, Options{Writers: 2}, 4096)
	small := &websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return bufSize(c, unix.SO_RCVBUF, 4096)
	}}).DialContext}
	ctx := context.Background()
	var subs []*websocket.Conn
	for range 3 {
		c, _, err := small.DialContext(ctx, "ws://"+addr+DefaultPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		subs = append(subs, c)
	}
	pub, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+addr+DefaultPubPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	msg := bytes.Repeat([]byte("x"), 32)
	sent := int64(0)
	done := func() bool { return s.Stats().Rounds == 2*sent } // two writers
	for s.Stats().EAGAIN+s.Stats().Short == 0 {
		if sent == 100000 {
			t.Fatalf("no EAGAIN after %d messages of %d bytes: %+v", sent, len(msg), s.Stats())
		}
		if err := pub.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatal(err)
		}
		if sent++; sent%64 == 0 {
			waitFor(t, "the writers", done) // the counters lag the publisher
		}
	}
	waitFor(t, "the writers", done)
	// One write per subscriber and message, never more: whole, refused or
	// short (that subscriber is then dropped).
	st := s.Stats()
	writes := st.Written + st.EAGAIN + st.Short + st.Gone
	t.Logf("%d messages: %v", sent, st)
	if st.Gone != 0 || st.Subscribers != 3-st.Short || st.Published != sent || writes > 3*sent || (st.Short == 0 && writes != 3*sent) {
		t.Errorf("got %+v after %d messages; want one write per subscriber and message, %d subscribers, none gone",
			st, sent, 3-st.Short)
	}
}
