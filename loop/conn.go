//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"net"
	"net/netip"
	"sync/atomic"

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

// The kind of a connection, in bits 8..15 of conn.st. xfTLS never changes;
// xfStream and xfHandoff are set on the loop with the 101, before any other
// goroutine has the Conn for writing.
const (
	xfTLS     uint8 = 1 << iota // accepted by the TLS listener
	xfStream                    // switched to a byte stream (Decision.Switch), not WebSocket
	xfHandoff                   // its socket was handed to the Handler (Decision.Handoff)
)

// conn.st packs what goroutines other than the loop read and change: the
// phase (bits 0..7), the kind (xf, bits 8..15) and the generation of the
// conn (bits 16..31), which the loop bumps each time it reuses the conn
// for another connection. A goroutine holding a stale Conn handle that
// compares and swaps st thus fails once the conn was reused, even when the
// new connection is in the phase it expects (see Conn).
const (
	stPhaseMask = 0xff
	stKindShift = 8
	stGenShift  = 16
)

// stream reports whether c was switched to a byte stream.
func (c *conn) stream() bool { return c.kind()&xfStream != 0 }

// kind returns c's xf bits.
func (c *conn) kind() uint8 { return uint8(c.st.Load() >> stKindShift) }

// maxAsyncFrame is the largest frame another goroutine may queue: the
// in-flight byte count is 32 bits.
const maxAsyncFrame = 1 << 30

// conn is the loop's state of one TCP connection. Handlers see it through
// Conn handles (handle.go). A loop keeps the conns of closed plain
// connections in a free list and reuses them (Options.ConnPool): so no
// field another goroutine reads through a handle is a plain field that the
// reuse rewrites, they are atomics (st, id, remote, accepted, x, pmd), and
// l never changes.
type conn struct {
	gc       gnet.Conn
	l        *evloop                     // the owning loop; never changes
	remote   atomic.Pointer[net.TCPAddr] // nil when gnet gave none
	id       atomic.Uint64               // the connection's id; 0 while the conn is free
	ctx      any                         // the Handler's value: loop goroutine only (see SetContext)
	accepted atomic.Int64                // accept time, in nanoseconds since the server's start

	st      atomic.Uint32 // phase, kind and generation: see stPhaseMask
	pending atomic.Int32  // bytes queued in the loop's inbox and not yet written

	// Owned by the loop goroutine.
	flags    uint8
	why      uint8           // why the connection is ending (whyXxx), for OnClose
	code     ws.StatusCode   // close code reported to OnClose
	tslot    int16           // wheel list holding c, -1 when none
	tlsEnded bool            // the end of the TLS handshake is counted (tlsfail.go); loop goroutine
	hold     uint8           // hReport, hFree: see recycle (pool.go)
	tat      uint32          // tick at which the timer fires
	lastRead uint32          // tick of the last inbound bytes
	mark     uint32          // stOpen: tick of the outstanding ping; else the deadline
	maxMsg   uint32          // message size limit
	req      *parser.Request // head in progress, from the loop's free list
	part     *partial        // frame in progress, from the loop's free list
	tnext    *conn
	tprev    *conn
	x        atomic.Pointer[connExtra] // what only some connections need, else nil; see connExtra
	pmd      atomic.Uint64             // permessage-deflate agreement (a pmd); set at the 101, then read-only

	// conn is 144 bytes on 64-bit platforms, a size class of its own: every
	// idle connection holds one, so a field added here costs every
	// connection 16 bytes once the size passes 144 (TestConnSize). The
	// peer's protocol violation, rare, lives in evloop.perrs.
}

// connExtra holds what only some connections need: TLS connections their
// TLS state, connections behind a PROXY protocol header the client's
// address. It is attached by the loop before the request head reaches the
// Handler (the TLS state at accept, the address when the PROXY header is
// read) and read-only after, so any goroutine may read it once the Handler
// has the Conn. It is never reused: a reused conn gets a new one.
type connExtra struct {
	tls   *tlsState // with Options.TLS (tls.go), else nil
	pkind uint8     // 0: no PROXY address (the TCP peer is the client), 4 or 6
	pport uint16    // PROXY protocol source port
	paddr [16]byte  // PROXY protocol source address
}

// extra returns c's connExtra, attaching one first if c has none. Loop
// goroutine, before the head reaches the Handler.
func (c *conn) extra() *connExtra {
	x := c.x.Load()
	if x == nil {
		x = new(connExtra)
		c.x.Store(x)
	}
	return x
}

// tlsSt returns c's TLS state, nil for a plain connection.
func (c *conn) tlsSt() *tlsState {
	if x := c.x.Load(); x != nil {
		return x.tls
	}
	return nil
}

// err returns the error OnClose reports, nil when none was recorded.
func (c *conn) err() error {
	if pe := c.l.perrs[c]; pe != nil {
		return pe
	}
	return closeErrs[c.why]
}

// clientAddr returns the client's address: see Conn.ClientAddr.
func (c *conn) clientAddr() netip.AddrPort {
	if x := c.x.Load(); x != nil {
		switch x.pkind {
		case 4:
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte(x.paddr[:4])), x.pport)
		case 6:
			return netip.AddrPortFrom(netip.AddrFrom16(x.paddr), x.pport)
		}
	}
	r := c.remote.Load()
	if r == nil {
		return netip.AddrPort{}
	}
	ap := r.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// setProxied records the client address of a PROXY protocol header.
func (c *conn) setProxied(a netip.AddrPort) {
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

// phase returns c's phase.
func (c *conn) phase() uint32 { return c.st.Load() & stPhaseMask }

// setPhase sets c's phase. Loop goroutine.
func (c *conn) setPhase(p uint32) {
	for {
		w := c.st.Load()
		if c.st.CompareAndSwap(w, w&^stPhaseMask|p) {
			return
		}
	}
}

// setKind adds the kind bits f to c. Loop goroutine.
func (c *conn) setKind(f uint8) {
	for {
		w := c.st.Load()
		if c.st.CompareAndSwap(w, w|uint32(f)<<stKindShift) {
			return
		}
	}
}

// leaveOpen moves c from stOpen to phase p; false when c was not open.
func (c *conn) leaveOpen(p uint32) bool {
	for {
		w := c.st.Load()
		if w&stPhaseMask != stOpen {
			return false
		}
		if c.st.CompareAndSwap(w, w&^stPhaseMask|p) {
			return true
		}
	}
}

// leaveOpenOf is leaveOpen for a handle's goroutine: it fails once c no
// longer holds connection id, also when c was reused for another
// connection that is open (the generation in st changed). Any goroutine.
func (c *conn) leaveOpenOf(id uint64, p uint32) bool {
	for {
		w := c.st.Load()
		// st is read before id: the loop stores a reused conn's new id
		// before its new generation, so a matching id here means w is of
		// the connection id, and the swap fails if that changed since.
		if c.id.Load() != id || w&stPhaseMask != stOpen {
			return false
		}
		if c.st.CompareAndSwap(w, w&^stPhaseMask|p) {
			return true
		}
	}
}

// phaseOf returns c's phase while c holds connection id, else stClosed.
// Any goroutine.
func (c *conn) phaseOf(id uint64) uint32 {
	p := c.phase()
	if c.id.Load() != id {
		return stClosed
	}
	return p
}

// openErr returns nil when c is open, else the error to report.
func (c *conn) openErr() error { return phaseErr(c.phase()) }

// phaseErr returns nil for stOpen, else the error a write reports in phase p.
func phaseErr(p uint32) error {
	switch p {
	case stOpen:
		return nil
	case stHead, stWait:
		return ErrNotOpen
	}
	return ErrClosed
}

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

// sendAsync queues a frame into the loop's inbox for connection id: payload
// is encoded into a pooled buffer, or shared is sent as is. Any goroutine.
func (c *conn) sendAsync(id uint64, op ws.OpCode, payload, shared []byte) error {
	n := len(shared)
	if shared == nil {
		n = frame.HeaderLen(len(payload)) + len(payload)
	}
	if n > maxAsyncFrame {
		return ErrTooLarge
	}
	// The caller found connection id open (Conn.anyGoroutine); postSend
	// checks again under the inbox lock.
	o := inboxOp{kind: opSend, c: c, id: id, n: int32(n), shared: shared}
	if shared == nil {
		o.buf = bytebufferpool.Get()
		if z := c.agreement(); z.compresses(op, len(payload)) {
			var err error
			o.buf.B, err = c.l.srv.appendCompressed(o.buf.B[:0], &z, op, payload)
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
			c.slowAsync(id)
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

// slowAsync starts closing connection id with 1008 from any goroutine.
func (c *conn) slowAsync(id uint64) {
	if c.closeAsync(id, ws.StatusPolicyViolation, "slow consumer", whySlow) == nil {
		c.l.stats.SlowConsumers.Add(1)
	}
}

// closeAsync claims the close of connection id and queues the close frame
// behind the writes queued for it; the loop arms the close wait once it is
// written. Any goroutine.
func (c *conn) closeAsync(id uint64, code ws.StatusCode, reason string, why uint8) error {
	if !c.leaveOpenOf(id, stClosing) {
		return phaseErr(c.phaseOf(id))
	}
	buf := bytebufferpool.Get()
	buf.B = buf.B[:0]
	if !c.stream() {
		buf.B = frame.AppendClose(buf.B, code, reason)
	}
	c.l.postLast(c, id, buf, true, code, why)
	return nil
}
