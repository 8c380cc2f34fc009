//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// fakeConn is a gnet.Conn without a socket, to drive the handler's callbacks
// directly: input comes from in, writes are counted (and the last one kept).
// Methods the loop does not use are left to the embedded nil interface and
// panic if called.
type fakeConn struct {
	gnet.Conn
	el      *fakeLoop
	buf     []byte
	in      []byte
	out     int
	writes  int
	last    []byte
	all     []byte // every byte written, when keepAll is set
	keepAll bool
	// failWrite makes writes fail like a reset socket: gnet closes the
	// connection inside the write, calling OnClose, and returns the error.
	failWrite bool
	ctx       any
	async     []gnet.AsyncCallback
}

var fakeAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}

func newFakeConn(el *fakeLoop) *fakeConn {
	return &fakeConn{el: el, buf: make([]byte, 0, 1<<20), last: make([]byte, 0, 1<<20)}
}

// feed replaces the unread input with a copy of b (the loop unmasks in place).
func (f *fakeConn) feed(b []byte) { f.in = append(f.buf[:0], b...) }

func (f *fakeConn) Peek(n int) ([]byte, error) {
	if n <= 0 || n > len(f.in) {
		return f.in, nil
	}
	return f.in[:n], nil
}

func (f *fakeConn) Discard(n int) (int, error) {
	if n <= 0 || n >= len(f.in) {
		n = len(f.in)
		f.in = f.buf[:0]
		return n, nil
	}
	f.in = f.in[n:]
	return n, nil
}

func (f *fakeConn) InboundBuffered() int  { return len(f.in) }
func (f *fakeConn) OutboundBuffered() int { return 0 }

func (f *fakeConn) Write(b []byte) (int, error) {
	if f.failWrite {
		f.failWrite = false
		ev(f.el.srv).OnClose(f, unix.ECONNRESET)
		return 0, unix.ECONNRESET
	}
	f.out += len(b)
	f.writes++
	f.last = append(f.last[:0], b...)
	if f.keepAll {
		f.all = append(f.all, b...)
	}
	return len(b), nil
}

func (f *fakeConn) Writev(bs [][]byte) (int, error) {
	f.last = f.last[:0]
	n := 0
	for _, b := range bs {
		n += len(b)
		f.last = append(f.last, b...)
	}
	f.out += n
	f.writes++
	if f.keepAll {
		f.all = append(f.all, f.last...)
	}
	return n, nil
}

// AsyncWrite runs the callback at once, as if the loop had written the bytes.
func (f *fakeConn) AsyncWrite(b []byte, cb gnet.AsyncCallback) error {
	_, _ = f.Write(b)
	if cb != nil {
		_ = cb(f, nil)
	}
	return nil
}

// AsyncWritev is AsyncWrite for several slices (Server.Execute hands its
// task over as a write of none).
func (f *fakeConn) AsyncWritev(bs [][]byte, cb gnet.AsyncCallback) error {
	if len(bs) > 0 {
		_, _ = f.Writev(bs)
	}
	if cb != nil {
		_ = cb(f, nil)
	}
	return nil
}

func (f *fakeConn) Context() any                { return f.ctx }
func (f *fakeConn) SetContext(v any)            { f.ctx = v }
func (f *fakeConn) EventLoop() gnet.EventLoop   { return f.el }
func (f *fakeConn) RemoteAddr() net.Addr        { return fakeAddr }
func (f *fakeConn) Fd() int                     { return -1 }
func (f *fakeConn) Close() error                { return nil }
func (f *fakeConn) SetDeadline(time.Time) error { return nil }

// fakeLoop is the gnet.EventLoop of fake connections.
type fakeLoop struct{ srv *Server }

func (*fakeLoop) Register(context.Context, net.Addr) (<-chan gnet.RegisteredResult, error) {
	return nil, nil
}

// Enroll refuses: a fake loop has no wake connection, and its inbox is
// drained through Execute.
func (*fakeLoop) Enroll(context.Context, net.Conn) (<-chan gnet.RegisteredResult, error) {
	return nil, errors.New("fake loop: no Enroll")
}

// Execute runs the task at once, as if the loop had run it.
func (*fakeLoop) Execute(ctx context.Context, r gnet.Runnable) error { return r.Run(ctx) }
func (*fakeLoop) Schedule(context.Context, gnet.Runnable, time.Duration) error {
	return nil
}
func (l *fakeLoop) Close(c gnet.Conn) error {
	ev(l.srv).OnClose(c, nil)
	return nil
}

// nopHandler upgrades every WebSocket request and echoes messages.
type nopHandler struct{}

func (nopHandler) OnRequest(r *Request, d *Decision) {
	if r.WebSocket {
		d.Upgrade(nil, nil, 0)
		return
	}
	d.Respond(200, "", "text/plain", okBody)
}
func (nopHandler) OnOpen(Conn) {}
func (nopHandler) OnMessage(c Conn, op ws.OpCode, p []byte) {
	_ = c.Write(op, p)
}
func (nopHandler) OnClose(Conn, ws.StatusCode, error) {}

var okBody = []byte("ok\n")

// fakeServer returns a server (not started) with one fake loop, and an
// upgraded fake connection on it. The loop's goroutine is the caller's.
func fakeServer(tb interface{ Fatal(...any) }, h Handler) (*Server, *fakeConn) {
	o := testOptions()
	s, err := New(h, o)
	if err != nil {
		tb.Fatal(err)
	}
	fc := newFakeConn(&fakeLoop{srv: s})
	ev(s).OnOpen(fc)
	fc.feed(upgradeRequest("/ws"))
	ev(s).OnTraffic(fc)
	if c := fc.ctx.(*conn); c.phase() != stOpen {
		tb.Fatal("fake connection not upgraded")
	}
	return s, fc
}

// ev returns s as gnet's event handler, to drive its callbacks directly.
func ev(s *Server) *events { return (*events)(s) }
