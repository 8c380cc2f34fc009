package wstest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/internal/testutil"
)

// Client is a WebSocket client on a bare TCP socket. The methods that check
// something fail the test through T, so they run on the test's goroutine
// (or T is replaced by a testing.TB whose Fatalf only records the failure).
// ReadFrameInto reports its errors instead and allocates nothing: it serves
// readers on other goroutines and allocation tests.
type Client struct {
	T    testing.TB
	Conn net.Conn
	// R reads Conn: read through it, never from Conn, or the bytes it
	// buffered are skipped.
	R *bufio.Reader

	hdr [10]byte // ReadFrameInto's header
}

// Dial connects to addr (host:port), sets testutil.Timeout from now as the
// deadline of every read and write on the socket, and closes the socket when
// the test ends.
func Dial(t testing.TB, addr string) *Client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testutil.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	_ = c.SetDeadline(time.Now().Add(testutil.Timeout))
	t.Cleanup(func() { _ = c.Close() })
	return NewClient(t, c)
}

// DialWS is Dial followed by the handshake of UpgradeRequest(path) and a
// check of the 101 answer.
func DialWS(t testing.TB, addr, path string) *Client {
	t.Helper()
	w := Dial(t, addr)
	w.Write(UpgradeRequest(path))
	w.ExpectSwitching()
	return w
}

// NewClient is a Client on c, a connection the caller made: the caller
// sets its deadlines and closes it.
func NewClient(t testing.TB, c net.Conn) *Client {
	return &Client{T: t, Conn: c, R: bufio.NewReaderSize(c, 64<<10)}
}

// Write writes the bytes of b one after the other, in one write.
func (w *Client) Write(b ...[]byte) {
	w.T.Helper()
	if _, err := w.Conn.Write(bytes.Join(b, nil)); err != nil {
		w.T.Fatalf("write: %v", err)
	}
}

// WriteChopped writes b in pieces of chop bytes, one write each, and sleeps
// pause between two pieces: a slow client, whose bytes the server must read
// as they come.
func (w *Client) WriteChopped(b []byte, chop int, pause time.Duration) {
	w.T.Helper()
	for len(b) > 0 {
		n := min(chop, len(b))
		if _, err := w.Conn.Write(b[:n]); err != nil {
			w.T.Fatalf("write: %v", err)
		}
		b = b[n:]
		if pause > 0 && len(b) > 0 {
			time.Sleep(pause) // pacing, so that each piece comes on its own
		}
	}
}

// ReadHead reads an HTTP/1.1 response head and returns its status and the
// whole head, blank line included.
func (w *Client) ReadHead() (status int, head string) {
	w.T.Helper()
	var sb strings.Builder
	for {
		line, err := w.R.ReadString('\n')
		if err != nil {
			w.T.Fatalf("reading response head: %v (so far %q)", err, sb.String())
		}
		sb.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	head = sb.String()
	if _, err := fmt.Sscanf(head, "HTTP/1.1 %d", &status); err != nil {
		w.T.Fatalf("bad status line in %q", head)
	}
	return status, head
}

// ExpectSwitching reads the answer to a handshake and checks that it is a
// 101 with the Sec-WebSocket-Accept of Key.
func (w *Client) ExpectSwitching() {
	w.T.Helper()
	status, head := w.ReadHead()
	if status != 101 {
		w.T.Fatalf("status %d, want 101:\n%s", status, head)
	}
	if !strings.Contains(head, "Sec-WebSocket-Accept: "+Accept+"\r\n") {
		w.T.Fatalf("bad accept key:\n%s", head)
	}
}

// Next reads one frame and checks that it has no RSV bit (the server
// negotiates no extension) and no mask.
func (w *Client) Next() Frame {
	w.T.Helper()
	f, err := ReadFrame(w.R)
	if err != nil {
		w.T.Fatalf("reading frame: %v", err)
	}
	if f.Rsv != 0 {
		w.T.Fatalf("server frame with RSV bits: %v", f)
	}
	return f
}

// ExpectMessage reads one frame and checks that it is a whole message of op
// with payload.
func (w *Client) ExpectMessage(op ws.OpCode, payload []byte) {
	w.T.Helper()
	f := w.Next()
	if f.Op != op || !f.Fin || !bytes.Equal(f.Payload, payload) {
		w.T.Fatalf("got %v, want op %d with %d bytes %q", f, op, len(payload), trunc(payload))
	}
}

// ExpectPong reads one frame and checks that it is a pong with payload.
func (w *Client) ExpectPong(payload []byte) {
	w.T.Helper()
	w.ExpectMessage(ws.OpPong, payload)
}

// ExpectClose reads the server's close frame, checks its code and that its
// reason is UTF-8, then expects the server to end TCP cleanly (ExpectEOF).
func (w *Client) ExpectClose(code ws.StatusCode) {
	w.T.Helper()
	f := w.Next()
	if f.Op != ws.OpClose {
		w.T.Fatalf("got %v, want a close frame with %d", f, code)
	}
	if got := f.CloseCode(); got != code {
		w.T.Fatalf("close code %d (%q), want %d", got, f.Payload, code)
	}
	if len(f.Payload) > 2 && !utf8.Valid(f.Payload[2:]) {
		w.T.Fatalf("close reason is not UTF-8: %q", f.Payload)
	}
	w.ExpectEOF()
}

// ExpectEOF expects the server to have closed its side (no more bytes, and
// a FIN rather than a reset), then closes the socket as a WebSocket client
// does.
func (w *Client) ExpectEOF() {
	w.T.Helper()
	var b [1]byte
	n, err := w.R.Read(b[:])
	if n != 0 || err != io.EOF {
		w.T.Fatalf("want EOF, got %d bytes (%q), %v", n, b[:n], err)
	}
	_ = w.Conn.Close()
}

// CloseNormally runs a close handshake that the client begins, with 1000.
func (w *Client) CloseNormally() {
	w.T.Helper()
	w.Write(Message(ws.OpClose, ClosePayload(ws.StatusNormalClosure, "bye")))
	w.ExpectClose(ws.StatusNormalClosure)
}

// ReadFrameInto reads one frame whose payload fits in buf into buf and
// returns its opcode and payload length. It allocates nothing and calls
// nothing of T: any goroutine may run it (one at a time). A masked frame or
// a payload over len(buf) is an error.
func (w *Client) ReadFrameInto(buf []byte) (ws.OpCode, int, error) {
	_, _, op, n, err := readHeader(w.R, &w.hdr)
	if err != nil {
		return 0, 0, err
	}
	if n > uint64(len(buf)) {
		return 0, 0, fmt.Errorf("wstest: frame of %d bytes over the %d-byte buffer", n, len(buf))
	}
	_, err = io.ReadFull(w.R, buf[:n])
	return op, int(n), err
}
