//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"slices"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"

	"github.com/upgate/upgate/loop/frame"
)

// websocket is the read callback of an open or closing connection. buf is
// what Peek(-1) returned; the frames start at buf[start] (after a request
// head answered 101 in the same callback, start is the head's length). It
// decodes every complete frame, then consumes all of buf: an incomplete
// frame is moved into the connection's own buffer, since gnet does not call
// back for bytes left in its buffer.
func (l *evloop) websocket(c *conn, buf []byte, start int) gnet.Action {
	p := c.part
	if p == nil {
		p = l.getPart(c)
		c.part = p
	}
	data := buf[start:]
	own := p.in != nil
	if own {
		p.in.B = append(p.in.B, data...)
		data = p.in.B
	}
	consumed := l.decode(c, p, data)

	switch c.phase() {
	case stOpen, stClosing:
	case stClosed:
		return gnet.Close
	default: // stFlushing, stLinger: the rest of the input is discarded
		c.discardIn(len(buf))
		return gnet.None
	}

	rest := data[consumed:]
	switch {
	case len(rest) == 0 && c.flags&fFragOpen == 0:
		// At a frame boundary with no message open: the decoder holds
		// nothing worth keeping.
		l.putPart(p)
		c.part = nil
	case len(rest) == 0:
		if own {
			bytebufferpool.Put(p.in)
			p.in = nil
		}
	case own:
		p.in.B = p.in.B[:copy(p.in.B, rest)]
	default:
		p.in = bytebufferpool.Get()
		p.in.B = append(presize(p.in.B[:0], rest, int64(c.maxMsg)), rest...)
	}
	c.discardIn(len(buf))
	return gnet.None
}

// maxPresize bounds the room reserved for a frame from its declared length:
// a peer must send bytes, not just a header, to make the server hold memory.
const maxPresize = 256 << 10

// presize grows b to hold the frame that rest begins (up to maxPresize),
// when its header is complete, so that a frame arriving in pieces is not
// copied again at each doubling.
func presize(b, rest []byte, maxMessage int64) []byte {
	h, n, err := frame.ParseHeader(rest)
	if err != nil || h.Length > maxMessage {
		return b
	}
	// In int64: a length past 2 GiB (MaxMessage allows 4 GiB - 1) does not
	// fit a 32-bit int.
	return slices.Grow(b, int(min(int64(n)+h.Length, maxPresize)))
}

// decode runs the decoder over data until it needs more bytes or the
// connection stops reading frames, and returns the bytes consumed.
func (l *evloop) decode(c *conn, p *partial, data []byte) int {
	off := 0
	// An empty input never completes a frame: stop without asking.
	for off < len(data) {
		st := c.phase()
		if st != stOpen && st != stClosing {
			return off
		}
		ev, n, err := p.dec.Next(data[off:])
		if err != nil {
			if err != frame.ErrNeedMore {
				l.protocolError(c, err)
			}
			return off
		}
		off += n
		switch ev.Kind {
		case frame.None:
			c.flags |= fFragOpen
		case frame.Message:
			c.flags &^= fFragOpen
			if st == stOpen {
				payload := ev.Payload
				if ev.Rsv&rsv1 != 0 {
					// Compressed (RFC 7692 §6.2); the decoder lets RSV1
					// through only when it was negotiated.
					if payload, err = l.inflate(c, ev.Op, payload); err != nil {
						l.protocolError(c, err)
						return off
					}
				}
				l.stats.MessagesIn.Add(1)
				l.stats.BytesIn.Add(uint64(len(payload)))
				l.depth++
				l.srv.h.OnMessage(c.handle(), ev.Op, payload)
				l.leave()
				l.trimInflate()
			}
			// After the server's close frame, data is discarded (§5.5.1:
			// the server sends nothing more, and the peer's late
			// messages have no one to go to).
		case frame.Ping:
			if st == stOpen {
				l.writeFrame(c, ws.OpPong, 0, ev.Payload)
				if l.srv.ctl != nil && c.phase() == stOpen {
					l.depth++
					l.srv.ctl.OnPing(c.handle(), ev.Payload)
					l.leave()
				}
			}
		case frame.Pong:
			// Any input counts as liveness: lastRead was updated.
			if st == stOpen && l.srv.ctl != nil {
				l.depth++
				l.srv.ctl.OnPong(c.handle(), ev.Payload)
				l.leave()
			}
		case frame.Close:
			l.peerClose(c, ev.Code)
			return off
		}
	}
	return off
}
