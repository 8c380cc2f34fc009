//go:build linux

package loop

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/upgate/upgate/parser"
)

// streamHandler switches /stream to the protocols foo/2 and foo/3 and
// echoes its bytes in upper case; /handoff hands the connection over
// (echoing from a goroutine through the duplicated descriptor); /later
// decides the switch from another goroutine. Everything else is
// testHandler's.
type streamHandler struct {
	*testHandler
	protocols []parser.Protocol
	defer_    bool

	streamOpen  chan Conn
	streamEnd   chan error
	handoffRest chan []byte
	handoffFD   chan int
}

func newStreamHandler() *streamHandler {
	return &streamHandler{
		testHandler: newTestHandler(),
		protocols:   []parser.Protocol{{Name: "foo", Version: "2"}, {Name: "foo", Version: "3"}},
		streamOpen:  make(chan Conn, 16),
		streamEnd:   make(chan error, 16),
		handoffRest: make(chan []byte, 16),
		handoffFD:   make(chan int, 16),
	}
}

func (h *streamHandler) OnRequest(r *Request, d *Decision) {
	path := string(r.Head.Path())
	if path != "/stream" && path != "/handoff" && path != "/later" {
		h.testHandler.OnRequest(r, d)
		return
	}
	idx, _ := r.Head.SelectUpgrade(h.protocols)
	if idx < 0 {
		if r.WebSocketErr != nil {
			d.RejectError(r.WebSocketErr)
			return
		}
		d.RequireUpgradeOf(h.protocols)
		return
	}
	p := h.protocols[idx]
	token := []byte(p.Name + "/" + p.Version)
	switch path {
	case "/later":
		d.Defer()
		c := r.Conn
		go c.Resolve(func(d *Decision, ok bool) {
			if ok {
				d.Switch(token)
			}
		})
		return
	case "/handoff":
		d.Handoff = true
	}
	d.Switch(token)
}

func (h *streamHandler) OnStreamOpen(c Conn) { h.streamOpen <- c }

func (h *streamHandler) OnData(c Conn, p []byte) {
	_ = c.WriteStream(bytes.ToUpper(p))
}

func (h *streamHandler) OnStreamClose(c Conn, err error) { h.streamEnd <- err }

func (h *streamHandler) OnHandoff(c Conn, fd int, rest []byte) {
	h.handoffRest <- append([]byte(nil), rest...)
	h.handoffFD <- fd
}

// switchReq is a request asking for the upgrade list.
func switchReq(path, upgrade string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: " + upgrade + "\r\n\r\n"
}

// readResponse reads one response head from br.
func readResponse(t *testing.T, br *bufio.Reader) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	return resp
}

func dialStream(t *testing.T, s *Server) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	return nc, bufio.NewReader(nc)
}

func TestStreamSwitch(t *testing.T) {
	tests := []struct {
		path, upgrade string
		status        int
		protocol      string // Upgrade of the response
	}{
		{"/stream", "example/1, foo/2", 101, "foo/2"},
		{"/stream", "foo/3, foo/2", 101, "foo/3"},
		{"/stream", "FOO/2", 101, "foo/2"},
		{"/stream", " ,example/1 ,\tfoo/2 ", 101, "foo/2"},
		{"/stream", "foo", 101, "foo/2"},
		{"/stream", "example/1, foo/4", 426, "foo/2, foo/3"},
		{"/stream", "h2c, foo/2", 101, "foo/2"},
		{"/later", "foo/2", 101, "foo/2"},
		{"/stream", "websocket", 400, ""}, // offered, but no valid handshake
	}
	s := startServer(t, newStreamHandler(), testOptions())
	for i, tt := range tests {
		nc, br := dialStream(t, s)
		if _, err := io.WriteString(nc, switchReq(tt.path, tt.upgrade)+"hello"); err != nil {
			t.Fatal(err)
		}
		resp := readResponse(t, br)
		if resp.StatusCode != tt.status {
			t.Errorf("#%d %q: got status %d; want %d", i, tt.upgrade, resp.StatusCode, tt.status)
			continue
		}
		if got := resp.Header.Get("Upgrade"); tt.protocol != "" && got != tt.protocol {
			t.Errorf("#%d %q: got Upgrade %q; want %q", i, tt.upgrade, got, tt.protocol)
		}
		if tt.status != 101 {
			continue
		}
		if !strings.EqualFold(resp.Header.Get("Connection"), "upgrade") {
			t.Errorf("#%d: got Connection %q; want Upgrade", i, resp.Header.Get("Connection"))
		}
		// The bytes sent with the head are the stream's first.
		got := make([]byte, 5)
		if _, err := io.ReadFull(br, got); err != nil || string(got) != "HELLO" {
			t.Errorf("#%d: got %q, %v; want HELLO", i, got, err)
		}
		if _, err := io.WriteString(nc, "more"); err != nil {
			t.Fatal(err)
		}
		got = got[:4]
		if _, err := io.ReadFull(br, got); err != nil || string(got) != "MORE" {
			t.Errorf("#%d: got %q, %v; want MORE", i, got, err)
		}
	}
}

// TestStreamEnds checks the ends of a stream: the peer's FIN, the
// server's Close (flushed first, then FIN), and the WebSocket methods
// refused on it.
func TestStreamEnds(t *testing.T) {
	h := newStreamHandler()
	s := startServer(t, h, testOptions())

	nc, br := dialStream(t, s)
	io.WriteString(nc, switchReq("/stream", "foo/2"))
	if resp := readResponse(t, br); resp.StatusCode != 101 {
		t.Fatalf("got %d; want 101", resp.StatusCode)
	}
	c := <-h.streamOpen
	if !c.IsStream() {
		t.Errorf("IsStream: got false")
	}
	if err := c.Send(ws.OpText, []byte("x")); err != ErrStream {
		t.Errorf("Send on a stream: got %v; want ErrStream", err)
	}
	if err := c.SendStream([]byte("from afar")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ws.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "from afar" {
		t.Errorf("got %q, %v; want the queued bytes, then EOF", rest, err)
	}
	nc.Close()
	if err := <-h.streamEnd; err != nil {
		t.Errorf("OnStreamClose after Close: got %v; want nil", err)
	}

	nc, br = dialStream(t, s)
	io.WriteString(nc, switchReq("/stream", "foo/2"))
	readResponse(t, br)
	<-h.streamOpen
	nc.(*net.TCPConn).CloseWrite()
	if err := <-h.streamEnd; err != nil {
		t.Errorf("OnStreamClose after the peer's FIN: got %v; want nil", err)
	}
	if got := s.Stats(); got.StreamsOpen != 0 || got.StreamsTotal != 2 {
		t.Errorf("got StreamsOpen %d, StreamsTotal %d; want 0, 2", got.StreamsOpen, got.StreamsTotal)
	}
}

// TestStreamIdle checks that the idle timeout ends a silent stream.
func TestStreamIdle(t *testing.T) {
	h := newStreamHandler()
	o := testOptions()
	o.IdleTimeout = 100 * time.Millisecond
	s := startServer(t, h, o)
	nc, br := dialStream(t, s)
	io.WriteString(nc, switchReq("/stream", "foo/2"))
	readResponse(t, br)
	if err := <-h.streamEnd; err != ErrIdleTimeout {
		t.Errorf("got %v; want ErrIdleTimeout", err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the idle timeout: got %v; want EOF", err)
	}
}

// TestHandoff checks that a handed-over connection keeps its socket open
// after gnet closed its descriptor, that the bytes behind the head are
// handed over, and that the new owner can use the socket both ways.
func TestHandoff(t *testing.T) {
	h := newStreamHandler()
	s := startServer(t, h, testOptions())
	nc, br := dialStream(t, s)
	io.WriteString(nc, switchReq("/handoff", "foo/2")+"early")
	if resp := readResponse(t, br); resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "foo/2" {
		t.Fatalf("got %d %q; want 101 foo/2", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	if rest := <-h.handoffRest; string(rest) != "early" {
		t.Errorf("rest: got %q; want early", rest)
	}
	fd := <-h.handoffFD
	f := os.NewFile(uintptr(fd), "handed")
	defer f.Close()
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("handed descriptor: flags %#x, %v; want close-on-exec", flags, err)
	}
	eventually(t, "gnet closed its side", func() bool { return s.Stats().ConnsOpen == 0 })
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the new owner: one exchange
		defer wg.Done()
		pf := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		buf := make([]byte, 64)
		for {
			if _, err := unix.Poll(pf, int(testTimeout/time.Millisecond)); err != nil && err != unix.EINTR {
				return
			}
			n, err := unix.Read(fd, buf)
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			if n > 0 {
				unix.Write(fd, bytes.ToUpper(buf[:n]))
			}
			return
		}
	}()
	io.WriteString(nc, "ping")
	got := make([]byte, 4)
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "PING" {
		t.Errorf("through the handed socket: got %q, %v; want PING", got, err)
	}
	wg.Wait()
	if st := s.Stats(); st.Handoffs != 1 || st.WebSocketsOpen != 0 {
		t.Errorf("got Handoffs %d, WebSocketsOpen %d; want 1, 0", st.Handoffs, st.WebSocketsOpen)
	}
}
