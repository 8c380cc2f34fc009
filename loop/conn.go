//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"

	"github.com/upgate/upgate/loop/frame"
	"github.com/upgate/upgate/parser"
)

// Connection phases, in Conn.state. Goroutines other than the loop only
// ever move a connection from stOpen to stClosing (Close, slow consumer);
// the loop makes every other transition. A goroutine queuing a write checks
// the phase under the loop's inbox lock, and one that leaves stOpen takes
// that lock before it queues or writes the close frame (evloop.fence): so a
// close frame follows every write accepted before the close, and no write
// is accepted after it.
const (
	stHead     uint32 = iota // reading a request head
	stOpen                   // WebSocket open
	stClosing                // close frame sent or queued, waiting for the peer's
	stFlushing               // last bytes written, waiting for the outbound buffer to drain
	stLinger                 // write side shut down, discarding input until EOF
	stClosed                 // TCP connection closed
	stWait                   // request head answered "later" (ActDefer): waiting for Resolve
)

// Connection flags, owned by the loop.
const (
	fUpgraded  uint8 = 1 << iota // OnOpen was called: OnClose is due
	fCloseSent                   // the server's close frame is written
	fPeerClose                   // the peer's close frame was received
	fPingOut                     // a server ping awaits an answer
	fFragOpen                    // a fragmented message is being received
	fWait                        // mark holds the close deadline of a queued close frame
	fServed                      // a plain HTTP response was written (keep-alive)
	fProxy                       // a PROXY protocol header is expected before the head
)

// Conn.xf: what kind of connection c is. xfTLS never changes; xfStream and
// xfHandoff are set on the loop with the 101, before any other goroutine
// has the Conn for writing.
const (
	xfTLS     uint8 = 1 << iota // accepted by the TLS listener
	xfStream                    // switched to a byte stream (Decision.Switch), not WebSocket
	xfHandoff                   // its socket was handed to the Handler (Decision.Handoff)
)

// stream reports whether c was switched to a byte stream.
func (c *Conn) stream() bool { return c.xf&xfStream != 0 }

// maxAsyncFrame is the largest frame another goroutine may queue: the
// in-flight byte count is 32 bits.
const maxAsyncFrame = 1 << 30

// Conn is a connection handle. Its methods are safe to call from any
// goroutine unless their comment says otherwise: Write, WriteFrame,
// WriteClose and SetContext belong to the connection's event loop (see
// "Writing" below). A Conn may outlive its connection: once the connection
// is closing or closed its methods return ErrClosed.
type Conn struct {
	gc       gnet.Conn
	l        *evloop
	remote   *net.TCPAddr // nil when gnet gave none
	id       uint64
	ctx      any   // the Handler's value: loop goroutine only (see SetContext)
	accepted int64 // accept time, in nanoseconds since the server's start

	state   atomic.Uint32 // stHead ... stClosed
	pending atomic.Int32  // bytes queued in the loop's inbox and not yet written

	// Owned by the loop goroutine.
	flags    uint8
	why      uint8           // why the connection is ending (whyXxx), for OnClose
	code     ws.StatusCode   // close code reported to OnClose
	tslot    int16           // wheel list holding c, -1 when none
	xf       uint8           // xfTLS, xfStream, xfHandoff: what kind of connection c is
	tlsEnded bool            // the end of the TLS handshake is counted (tlsfail.go); loop goroutine
	tat      uint32          // tick at which the timer fires
	lastRead uint32          // tick of the last inbound bytes
	mark     uint32          // stOpen: tick of the outstanding ping; else the deadline
	maxMsg   uint32          // message size limit
	req      *parser.Request // head in progress, from the loop's free list
	part     *partial        // frame in progress, from the loop's free list
	tnext    *Conn
	tprev    *Conn
	x        *connExtra // what only some connections need, else nil; see connExtra
	pmd      pmd        // permessage-deflate agreement; set at the 101, then read-only

	// Conn is 144 bytes on 64-bit platforms, a size class of its own: every
	// idle connection holds one, so a field added here costs every
	// connection 16 bytes once the size passes 144 (TestConnSize). The
	// peer's protocol violation, rare, lives in evloop.perrs.
}

// connExtra holds what only some connections need: TLS connections their
// TLS state, connections behind a PROXY protocol header the client's
// address. It is attached by the loop before the request head reaches the
// Handler (the TLS state at accept, the address when the PROXY header is
// read) and read-only after, so any goroutine may read it once the Handler
// has the Conn.
type connExtra struct {
	tls   *tlsState // with Options.TLS (tls.go), else nil
	pkind uint8     // 0: no PROXY address (the TCP peer is the client), 4 or 6
	pport uint16    // PROXY protocol source port
	paddr [16]byte  // PROXY protocol source address
}

// extra returns c's connExtra, attaching one first if c has none. Loop
// goroutine, before the head reaches the Handler.
func (c *Conn) extra() *connExtra {
	if c.x == nil {
		c.x = new(connExtra)
	}
	return c.x
}

// tlsSt returns c's TLS state, nil for a plain connection.
func (c *Conn) tlsSt() *tlsState {
	if c.x == nil {
		return nil
	}
	return c.x.tls
}

// err returns the error OnClose reports, nil when none was recorded.
func (c *Conn) err() error {
	if pe := c.l.perrs[c]; pe != nil {
		return pe
	}
	return closeErrs[c.why]
}

// ID returns the connection's identifier, unique within the server. Any
// goroutine; never changes.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr returns the TCP peer's address: behind an L4 load balancer
// speaking the PROXY protocol, the balancer's (see ClientAddr). Any
// goroutine; never changes.
func (c *Conn) RemoteAddr() net.Addr {
	if c.remote == nil {
		return nil
	}
	return c.remote
}

// ClientAddr returns the client's address and port: the source address of
// the PROXY protocol header when Options.ProxyProtocol is set and the header
// named one (not a LOCAL or UNKNOWN header), else the TCP peer's. IPv4
// addresses are plain IPv4, never IPv4-mapped IPv6, unless a PROXY header
// sent them mapped. Any goroutine once the request head reached
// Handler.OnRequest; never changes after. No allocation.
func (c *Conn) ClientAddr() netip.AddrPort {
	if x := c.x; x != nil {
		switch x.pkind {
		case 4:
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte(x.paddr[:4])), x.pport)
		case 6:
			return netip.AddrPortFrom(netip.AddrFrom16(x.paddr), x.pport)
		}
	}
	if c.remote == nil {
		return netip.AddrPort{}
	}
	ap := c.remote.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// setProxied records the client address of a PROXY protocol header.
func (c *Conn) setProxied(a netip.AddrPort) {
	ip, x := a.Addr(), c.extra()
	if ip.Is4() {
		v4 := ip.As4()
		copy(x.paddr[:], v4[:])
		x.pkind = 4
	} else {
		x.paddr = ip.As16()
		x.pkind = 6
	}
	x.pport = a.Port()
}

// AcceptedAt returns when the server took the TCP connection in (its event
// loop's first callback for it, right after the accept). The time carries
// a monotonic clock reading: time.Since(c.AcceptedAt()) is the
// connection's age, unaffected by changes of the wall clock. The zero time
// for a Conn the server never made. Any goroutine; never changes; no
// allocation.
func (c *Conn) AcceptedAt() time.Time {
	if c.l == nil {
		return time.Time{}
	}
	return c.l.srv.start.Add(time.Duration(c.accepted))
}

// LoopIndex returns the index of the event loop that owns the connection,
// in [0, Server.Loops()): the loop that Server.Execute with this index
// runs on. 0 for a Conn the server never made. Any goroutine; never changes.
func (c *Conn) LoopIndex() int {
	if c.l == nil {
		return 0
	}
	return c.l.idx
}

// Context returns the value last given to SetContext, or nil. On the
// connection's loop goroutine (in Handler methods, or a task run by
// Server.Execute on that loop); another goroutine may read it only when it
// obtained c through a synchronising hand-off (a channel, a mutex) that
// followed the SetContext.
func (c *Conn) Context() any { return c.ctx }

// SetContext attaches a value of the caller's to the connection (the
// gateway's per-connection state). It costs no allocation beyond what
// storing v in an interface costs (none for a pointer). Loop goroutine
// only, in Handler methods: it is a plain field, not synchronised with
// other goroutines. Set it in OnRequest or OnOpen, before the Conn is
// handed to another goroutine.
func (c *Conn) SetContext(v any) { c.ctx = v }

// phase returns c's phase.
func (c *Conn) phase() uint32 { return c.state.Load() }

// setPhase sets c's phase. Loop goroutine.
func (c *Conn) setPhase(p uint32) { c.state.Store(p) }

// leaveOpen moves c from stOpen to phase p; false when c was not open.
func (c *Conn) leaveOpen(p uint32) bool { return c.state.CompareAndSwap(stOpen, p) }

// detached reports a Conn the loop never made (a zero Conn, as tests of the
// layers above build): its methods report ErrNotOpen.
func (c *Conn) detached() bool { return c.l == nil }

// openErr returns nil when c is open, else the error to report.
func (c *Conn) openErr() error {
	switch c.phase() {
	case stOpen:
		return nil
	case stHead, stWait:
		return ErrNotOpen
	}
	return ErrClosed
}

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

// checkOp validates the opcode and size of a message or control frame.
func checkOp(op ws.OpCode, payload []byte) error {
	switch op {
	case ws.OpText, ws.OpBinary:
	case ws.OpPing, ws.OpPong:
		if len(payload) > ws.MaxControlFramePayloadSize {
			return ErrControlTooLong
		}
	default:
		return ErrOpCode
	}
	return nil
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
func (c *Conn) Write(op ws.OpCode, payload []byte) error {
	if err := checkOp(op, payload); err != nil {
		return err
	}
	if c.detached() {
		return ErrNotOpen
	}
	if c.stream() {
		return ErrStream
	}
	return c.l.send(c, op, payload)
}

// WriteFrame writes a complete, pre-encoded server frame (unmasked, as made
// by frame.AppendFrame), or several, on the loop: see SendFrame. Loop
// goroutine only. The frame is written as it is, never compressed, also on
// a connection that negotiated permessage-deflate. b is written or copied before WriteFrame returns. Errors
// are those of Write.
func (c *Conn) WriteFrame(b []byte) error {
	if len(b) < 2 {
		return ErrBadFrame
	}
	if c.detached() {
		return ErrNotOpen
	}
	if c.stream() {
		return ErrStream
	}
	return c.l.sendFrame(c, b)
}

// WriteClose starts the close handshake on the loop: see Close. Loop
// goroutine only. The close frame goes out behind every write accepted
// before, including those other goroutines queued.
func (c *Conn) WriteClose(code ws.StatusCode, reason string) error {
	if !frame.ValidCloseCode(code) {
		return ErrCloseCode
	}
	if c.detached() {
		return ErrNotOpen
	}
	if err := c.openErr(); err != nil {
		return err
	}
	c.l.startClose(c, code, reason, whyNone)
	return nil
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
func (c *Conn) Send(op ws.OpCode, payload []byte) error {
	if err := checkOp(op, payload); err != nil {
		return err
	}
	if c.detached() {
		return ErrNotOpen
	}
	if c.stream() {
		return ErrStream
	}
	return c.sendAsync(op, payload, nil)
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
func (c *Conn) SendFrame(b []byte) error {
	if len(b) < 2 {
		return ErrBadFrame
	}
	if c.detached() {
		return ErrNotOpen
	}
	if c.stream() {
		return ErrStream
	}
	return c.sendAsync(0, nil, b)
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
func (c *Conn) Close(code ws.StatusCode, reason string) error {
	if !frame.ValidCloseCode(code) {
		return ErrCloseCode
	}
	if c.detached() {
		return ErrNotOpen
	}
	return c.closeAsync(code, reason, whyNone)
}

// sendAsync queues a frame into the loop's inbox: payload is encoded into a
// pooled buffer, or shared is sent as is.
func (c *Conn) sendAsync(op ws.OpCode, payload, shared []byte) error {
	n := len(shared)
	if shared == nil {
		n = frame.HeaderLen(len(payload)) + len(payload)
	}
	if n > maxAsyncFrame {
		return ErrTooLarge
	}
	if c.phase() != stOpen {
		return c.openErr() // refused before any encoding; checked again below
	}
	o := inboxOp{kind: opSend, c: c, n: int32(n), shared: shared}
	if shared == nil {
		o.buf = bytebufferpool.Get()
		if c.pmd.compresses(op, len(payload)) {
			var err error
			o.buf.B, err = c.l.srv.appendCompressed(o.buf.B[:0], c, op, payload)
			if err == nil && len(o.buf.B) > maxAsyncFrame {
				err = ErrTooLarge
			}
			if err != nil {
				o.drop()
				return err
			}
			o.n = int32(len(o.buf.B))
		} else {
			o.buf.B = frame.AppendFrame(o.buf.B[:0], op, true, payload)
		}
	}
	if err := c.l.postSend(&o); err != nil {
		o.drop()
		if err == ErrSlowConsumer {
			c.slowAsync()
		}
		return err
	}
	if shared == nil {
		if op == ws.OpText || op == ws.OpBinary {
			c.l.stats.MessagesOut.Add(1)
			c.l.stats.BytesOut.Add(uint64(len(payload)))
		}
	} else {
		c.l.countFrame(shared)
	}
	return nil
}

// slowAsync starts closing c with 1008 from any goroutine.
func (c *Conn) slowAsync() {
	if c.closeAsync(ws.StatusPolicyViolation, "slow consumer", whySlow) == nil {
		c.l.stats.SlowConsumers.Add(1)
	}
}

// closeAsync claims the close of c and queues the close frame behind the
// writes queued for c; the loop arms the close wait once it is written.
func (c *Conn) closeAsync(code ws.StatusCode, reason string, why uint8) error {
	if !c.leaveOpen(stClosing) {
		return c.openErr()
	}
	buf := bytebufferpool.Get()
	buf.B = buf.B[:0]
	if !c.stream() {
		buf.B = frame.AppendClose(buf.B, code, reason)
	}
	c.l.postLast(c, buf, true, code, why)
	return nil
}
