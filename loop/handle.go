//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"net"
	"net/netip"
	"time"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/loop/frame"
)

// Conn is a handle to one connection of the server: a 16-byte value the
// Handler receives in its callbacks and may keep, copy, compare and use as
// a map key. It names one connection for ever, but the state behind it is
// reused: a loop keeps the state of closed plain connections and gives it
// to the connections it accepts next, so that a handshake allocates
// nothing in upgate's code. A handle carries its connection's id, and every
// method checks it against the id of the state it points to; once the
// connection has ended and its state was reused, the methods answer as
// for a closed connection (ErrClosed, nil, the zero value), never on
// behalf of the newer connection.
//
// Its methods are safe to call from any goroutine unless their comment
// says otherwise: Write, WriteFrame, WriteClose, WriteStream, Context and
// SetContext belong to the connection's event loop (see "Writing" below).
// The zero Conn is no connection: its methods report ErrNotOpen.
//
// Writing: two families of methods. Write, WriteFrame and WriteClose
// belong to the connection's event loop goroutine: a Handler method (for
// any connection of the same loop) or a function run by Server.Execute on
// that loop. They write at once, into the loop's write path, with no copy
// into a queue and no allocation. Send, SendFrame and Close may be called
// from any goroutine: they hand the frame to the loop's inbox (see
// inbox.go), which the loop writes on its next turn, in the order queued.
// Calling a Write method from another goroutine is a data race; calling a
// Send method on the loop is correct, only slower. gnet draws the same line
// between Conn.Write and Conn.AsyncWrite.
type Conn struct {
	c  *conn
	id uint64
}

// handle returns the handle of c's current connection. Loop goroutine.
func (c *conn) handle() Conn { return Conn{c, c.id.Load()} }

// on returns h's state while it still holds h's connection (open or not),
// else nil. On the loop the answer holds until the loop moves on; on
// another goroutine it may be stale at once, so callers there check again
// where it matters (leaveOpenOf, postSend).
func (h Conn) on() *conn {
	if c := h.c; c != nil && c.id.Load() == h.id {
		return c
	}
	return nil
}

// Current reports whether h's connection still owns the state h points to:
// true from the accept until the loop reuses the state for a later
// connection (some time after OnClose returned), false for the zero Conn.
// Any goroutine. Its use is for state kept with the connection's
// (Options.KeepContext): a goroutine reads that state, then calls Current,
// and a true answer means what it read was this connection's, since the
// loop marks the state as another connection's before it changes it.
func (h Conn) Current() bool { return h.on() != nil }

// IsZero reports whether h is the zero Conn, the handle of no connection.
func (h Conn) IsZero() bool { return h.c == nil }

// ID returns the connection's identifier, unique within the server and
// never 0. Any goroutine; never changes, also after the connection ended.
func (h Conn) ID() uint64 { return h.id }

// RemoteAddr returns the TCP peer's address: behind an L4 load balancer
// speaking the PROXY protocol, the balancer's (see ClientAddr). Any
// goroutine; never changes while the connection lasts. After OnClose
// returned it may be nil.
func (h Conn) RemoteAddr() net.Addr {
	c := h.c
	if c == nil {
		return nil
	}
	r := c.remote.Load()
	if r == nil || c.id.Load() != h.id {
		return nil
	}
	return r
}

// ClientAddr returns the client's address and port: the source address of
// the PROXY protocol header when Options.ProxyProtocol is set and the header
// named one (not a LOCAL or UNKNOWN header), else the TCP peer's. IPv4
// addresses are plain IPv4, never IPv4-mapped IPv6, unless a PROXY header
// sent them mapped. Any goroutine once the request head reached
// Handler.OnRequest; never changes after while the connection lasts (after
// OnClose returned it may be the zero value). No allocation.
func (h Conn) ClientAddr() netip.AddrPort {
	c := h.c
	if c == nil {
		return netip.AddrPort{}
	}
	a := c.clientAddr()
	if c.id.Load() != h.id {
		return netip.AddrPort{}
	}
	return a
}

// AcceptedAt returns when the server took the TCP connection in (its event
// loop's first callback for it, right after the accept). The time carries
// a monotonic clock reading: time.Since(c.AcceptedAt()) is the
// connection's age, unaffected by changes of the wall clock. The zero time
// for the zero Conn, and possibly after OnClose returned. Any goroutine; no
// allocation.
func (h Conn) AcceptedAt() time.Time {
	c := h.c
	if c == nil {
		return time.Time{}
	}
	at := c.accepted.Load()
	if c.id.Load() != h.id {
		return time.Time{}
	}
	return c.l.srv.start.Add(time.Duration(at))
}

// LoopIndex returns the index of the event loop that owns the connection,
// in [0, Server.Loops()): the loop that Server.Execute with this index
// runs on. 0 for the zero Conn. Any goroutine; never changes.
func (h Conn) LoopIndex() int {
	if h.c == nil {
		return 0
	}
	return h.c.l.idx // a conn is reused only by its own loop
}

// Context returns the value last given to SetContext, or nil (also once the
// connection's state was reused). On the connection's loop goroutine (in
// Handler methods, or a task run by Server.Execute on that loop); another
// goroutine may read it only when it obtained h through a synchronising
// hand-off (a channel, a mutex) that followed the SetContext, and only
// while the connection is open.
func (h Conn) Context() any {
	if c := h.on(); c != nil {
		return c.ctx
	}
	return nil
}

// SetContext attaches a value of the caller's to the connection (the
// gateway's per-connection state). It costs no allocation beyond what
// storing v in an interface costs (none for a pointer). Loop goroutine
// only, in Handler methods: it is a plain field, not synchronised with
// other goroutines. Set it in OnRequest or OnOpen, before the Conn is
// handed to another goroutine. The value is dropped when the connection's
// state is reused.
func (h Conn) SetContext(v any) {
	if c := h.on(); c != nil {
		c.ctx = v
	}
}

// IsStream reports whether the connection was switched to a byte stream
// (Decision.Switch) rather than to WebSocket. Any goroutine once the
// Handler has the open connection.
func (h Conn) IsStream() bool {
	c := h.c
	if c == nil {
		return false
	}
	s := c.stream()
	return s && c.id.Load() == h.id
}

// Write sends one unfragmented message or control frame on the loop: op is
// ws.OpText, ws.OpBinary, ws.OpPing or ws.OpPong (at most 125 bytes for the
// last two). Text must be valid UTF-8; it is not checked. Loop goroutine
// only (see Send for other goroutines). payload is written or copied into
// the write path before Write returns; no allocation. On a connection that
// negotiated permessage-deflate (Decision.Deflate), a text or binary
// message of the threshold or more goes out compressed, with RSV1 set.
//
// It returns ErrClosed after the close handshake began, ErrNotOpen before
// the 101, and ErrSlowConsumer when the outbound queue is over
// Options.MaxOutbound (the connection is then closed with 1008).
func (h Conn) Write(op ws.OpCode, payload []byte) error {
	if err := checkOp(op, payload); err != nil {
		return err
	}
	c, err := h.onLoop()
	if err != nil {
		return err
	}
	if c.stream() {
		return ErrStream
	}
	return c.l.send(c, op, payload)
}

// onLoop returns h's state, or the error a method of the loop reports for
// a zero or ended handle. Loop goroutine.
func (h Conn) onLoop() (*conn, error) {
	if h.c == nil {
		return nil, ErrNotOpen
	}
	c := h.on()
	if c == nil {
		return nil, ErrClosed
	}
	return c, nil
}

// WriteFrame writes a complete, pre-encoded server frame (unmasked, as made
// by frame.AppendFrame), or several, on the loop: see SendFrame. Loop
// goroutine only. The frame is written as it is, never compressed, also on
// a connection that negotiated permessage-deflate. b is written or copied
// before WriteFrame returns. Errors are those of Write.
func (h Conn) WriteFrame(b []byte) error {
	if len(b) < 2 {
		return ErrBadFrame
	}
	c, err := h.onLoop()
	if err != nil {
		return err
	}
	if c.stream() {
		return ErrStream
	}
	return c.l.sendFrame(c, b)
}

// WriteClose starts the close handshake on the loop: see Close. Loop
// goroutine only. The close frame goes out behind every write accepted
// before, including those other goroutines queued.
func (h Conn) WriteClose(code ws.StatusCode, reason string) error {
	if !frame.ValidCloseCode(code) {
		return ErrCloseCode
	}
	c, err := h.onLoop()
	if err != nil {
		return err
	}
	if err := c.openErr(); err != nil {
		return err
	}
	c.l.startClose(c, code, reason, whyNone)
	return nil
}

// anyGoroutine returns h's state for a method of any goroutine, or the
// error it reports for a zero handle or a connection that is not open. The
// state may be reused right after: the callers check the id again under
// the loop's inbox lock (postSend) or in a compare-and-swap (leaveOpenOf).
func (h Conn) anyGoroutine() (*conn, error) {
	c := h.c
	if c == nil {
		return nil, ErrNotOpen
	}
	if p := c.phaseOf(h.id); p != stOpen {
		return nil, phaseErr(p)
	}
	return c, nil
}

// Send sends one unfragmented message or control frame, as Write does, from
// any goroutine: the frame is encoded into a pooled buffer and queued in
// the loop's inbox, which the loop writes on its next turn, after the
// writes queued before it. payload may be reused as soon as Send returns.
// No allocation in steady state. On a connection that negotiated
// permessage-deflate, a text or binary message of the threshold or more is
// compressed, on the calling goroutine, with RSV1 set.
//
// Errors are those of Write, plus ErrTooLarge for a frame over 1 GiB. A nil
// error means the frame is queued: it is written unless the connection
// ends first.
func (h Conn) Send(op ws.OpCode, payload []byte) error {
	if err := checkOp(op, payload); err != nil {
		return err
	}
	c, err := h.anyGoroutine()
	if err != nil {
		return err
	}
	if c.stream() {
		return ErrStream
	}
	return c.sendAsync(h.id, op, payload, nil)
}

// SendFrame sends a complete, pre-encoded server frame (unmasked, as made by
// frame.AppendFrame) from any goroutine: the way to broadcast, since one
// encoded frame is shared by every receiver without a copy per receiver.
//
// b may hold several complete frames, written as one: a loop that fell
// behind sends its queued broadcasts to each receiver in one write. Each is
// counted as sent.
//
// b is retained, not copied, until the loop has written it or moved it into
// its outbound buffer: it must never be modified after the first
// SendFrame. Errors are those of Send.
//
// b is sent as it is, never compressed, also on a connection that
// negotiated permessage-deflate; a frame with RSV1 set (a payload already
// compressed as RFC 7692 §7.2.1 says) may be sent only to connections that
// negotiated it with a compatible window.
func (h Conn) SendFrame(b []byte) error {
	if len(b) < 2 {
		return ErrBadFrame
	}
	c, err := h.anyGoroutine()
	if err != nil {
		return err
	}
	if c.stream() {
		return ErrStream
	}
	return c.sendAsync(h.id, 0, nil, b)
}

// Close starts the close handshake from any goroutine: it queues a close
// frame with code and reason (truncated to fit 123 bytes) behind every
// write accepted before, and no write is accepted after it. The loop then
// waits up to Options.CloseTimeout for the peer's close frame and closes
// TCP; Handler.OnClose follows. It returns ErrCloseCode for a code that may
// not be sent, ErrNotOpen before the 101 and ErrClosed when the handshake
// already began. On a stream connection code and reason are not sent: the
// stream ends once what was queued before is written (FIN, then the wait
// for the peer's, within CloseTimeout).
func (h Conn) Close(code ws.StatusCode, reason string) error {
	if !frame.ValidCloseCode(code) {
		return ErrCloseCode
	}
	c := h.c
	if c == nil {
		return ErrNotOpen
	}
	return c.closeAsync(h.id, code, reason, whyNone)
}
