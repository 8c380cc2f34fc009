package wstest

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// TestClientFrame: gobwas/ws reads back every field of what ClientFrame
// writes, for each length encoding.
func TestClientFrame(t *testing.T) {
	for i, tt := range []struct {
		op   ws.OpCode
		fin  bool
		rsv  byte
		size int
	}{
		{ws.OpText, true, 0, 0},
		{ws.OpBinary, false, 4, 125},
		{ws.OpContinuation, true, 1, 126},
		{ws.OpPing, false, 0, 65535},
		{ws.OpBinary, true, 7, 65536},
	} {
		p := Pattern(tt.size, false)
		got, err := ws.ReadFrame(bytes.NewReader(ClientFrame(tt.op, tt.fin, tt.rsv, p)))
		if err != nil {
			t.Fatalf("#%d: got %v; want a frame", i, err)
		}
		h := got.Header
		if h.OpCode != tt.op || h.Fin != tt.fin || h.Rsv != tt.rsv || !h.Masked || h.Length != int64(tt.size) {
			t.Fatalf("#%d: got header %+v; want op %d fin %v rsv %d masked, %d bytes", i, h, tt.op, tt.fin, tt.rsv, tt.size)
		}
		if ws.Cipher(got.Payload, h.Mask, 0); !bytes.Equal(got.Payload, p) {
			t.Fatalf("#%d: got another payload after unmasking", i)
		}
	}
}

// TestReadFrame: ReadFrame and ReadFrameInto read what gobwas/ws writes as
// a server, and refuse a masked frame.
func TestReadFrame(t *testing.T) {
	var stream bytes.Buffer
	sizes := []int{0, 125, 126, 65535, 65536}
	for _, n := range sizes {
		if err := ws.WriteFrame(&stream, ws.NewBinaryFrame(Pattern(n, false))); err != nil {
			t.Fatal(err)
		}
	}
	raw := stream.Bytes()
	br := bufio.NewReader(bytes.NewReader(raw))
	for i, n := range sizes {
		f, err := ReadFrame(br)
		if err != nil || !f.Fin || f.Rsv != 0 || f.Op != ws.OpBinary || !bytes.Equal(f.Payload, Pattern(n, false)) {
			t.Fatalf("#%d: got %v, %v; want a binary frame of %d bytes", i, f, err, n)
		}
	}
	w := &Client{R: bufio.NewReader(bytes.NewReader(raw))}
	buf := make([]byte, 1<<17)
	for i, n := range sizes {
		op, got, err := w.ReadFrameInto(buf)
		if err != nil || op != ws.OpBinary || got != n || !bytes.Equal(buf[:got], Pattern(n, false)) {
			t.Fatalf("#%d: got op %d, %d bytes, %v; want binary, %d bytes", i, op, got, err, n)
		}
	}
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(Message(ws.OpText, []byte("x"))))); err != errMasked {
		t.Fatalf("masked frame: got %v; want %v", err, errMasked)
	}
}

// TestReadFrameIntoAllocs: a reader of a stream of frames allocates
// nothing per frame.
func TestReadFrameIntoAllocs(t *testing.T) {
	frame := ws.MustCompileFrame(ws.NewTextFrame([]byte("hello")))
	raw := bytes.Repeat(frame, 200)
	r := bytes.NewReader(raw)
	w := &Client{R: bufio.NewReader(r)}
	buf := make([]byte, 16)
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := w.ReadFrameInto(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("got %v allocations per frame; want 0", allocs)
	}
}

// TestDialWS: a handshake with a server that answers as RFC 6455 says, then
// a close handshake the client begins.
func TestDialWS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		if _, err := ws.Upgrade(c); err != nil {
			errc <- err
			return
		}
		f, err := ws.ReadFrame(c)
		if err != nil {
			errc <- err
			return
		}
		ws.Cipher(f.Payload, f.Header.Mask, 0)
		errc <- ws.WriteFrame(c, ws.NewCloseFrame(f.Payload))
	}()
	w := DialWS(t, ln.Addr().String(), "/chat")
	w.CloseNormally()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestUpgradeRequest(t *testing.T) {
	got := string(UpgradeRequest("/p", "Origin: o"))
	if !strings.HasPrefix(got, "GET /p HTTP/1.1\r\n") || !strings.HasSuffix(got, "Origin: o\r\n\r\n") || !strings.Contains(got, "Sec-WebSocket-Key: "+Key+"\r\n") {
		t.Fatalf("got %q", got)
	}
}
