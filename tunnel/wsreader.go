package tunnel

import (
	"github.com/gobwas/ws"

	"github.com/upgate/upgate/loop/frame"
)

// wsEvent is what wsReader.next reports.
type wsEvent uint8

const (
	wsNeedMore wsEvent = iota // every byte given was consumed
	wsData                    // payload: stream bytes from a binary or continuation frame
	wsPing                    // payload: the ping's application data
	wsPong                    // payload: the pong's application data
	wsClose                   // payload: the close frame's payload; code: its status
	wsError                   // code: the status of the close frame to fail with
)

// wsReader is the streaming decoder of the frames a WebSocket client sends
// through a tunnel. It consumes any number of bytes at a time, holds at most
// one frame header and one control payload, and never waits for a whole
// message: the payload of binary frames is reported as it arrives. It is a
// pure state machine over bytes, with no I/O.
//
// It enforces what a tunnel needs of RFC 6455: masked frames (§5.1), no RSV
// bits (§5.2), known opcodes, control frames unfragmented and at most 125
// bytes (§5.5), fragmentation order (§5.4), valid close payloads (§5.5.1,
// §7.4); text messages are refused with 1003 since the stream is binary.
// After a close frame or an error every further byte is consumed and
// ignored.
type wsReader struct {
	hdr  [frame.MaxHeaderLen]byte // header bytes gathered so far
	hn   int                      // bytes in hdr
	ctl  [ws.MaxControlFramePayloadSize]byte
	cn   int // bytes of the control payload in ctl
	mask [4]byte
	mpos int   // offset into the mask of the next payload byte
	left int64 // payload bytes left in the current frame
	op   ws.OpCode

	inFrame bool // a header was read; left bytes of payload follow
	open    bool // a fragmented binary message awaits its continuation
	done    bool // a close frame or an error was reported
}

// next consumes bytes from the start of b up to and including the first
// event and returns the event with the number of bytes consumed. The payload
// of wsData aliases b, unmasked in place; the payload of a control event
// aliases the reader and is valid until the next call. wsNeedMore means all
// of b was consumed without an event.
func (r *wsReader) next(b []byte) (ev wsEvent, payload []byte, n int, code ws.StatusCode) {
	if r.done {
		return wsNeedMore, nil, len(b), 0
	}
	for {
		if !r.inFrame {
			if n == len(b) {
				return wsNeedMore, nil, n, 0
			}
			c := copy(r.hdr[r.hn:], b[n:])
			h, hl, err := frame.ParseHeader(r.hdr[:r.hn+c])
			if err == frame.ErrNeedMore {
				r.hn += c
				n += c
				continue
			}
			if err != nil {
				return r.fail(n+c, ws.StatusProtocolError)
			}
			n += hl - r.hn
			r.hn = 0
			if sc := r.check(h); sc != 0 {
				return r.fail(n, sc)
			}
			r.inFrame, r.op, r.left, r.mask, r.mpos, r.cn = true, h.OpCode, h.Length, h.Mask, 0, 0
			if !h.OpCode.IsControl() {
				r.open = !h.Fin
			}
		}
		c := int(min(r.left, int64(len(b)-n)))
		if r.op.IsControl() {
			p := r.ctl[r.cn : r.cn+c]
			copy(p, b[n:n+c])
			ws.Cipher(p, r.mask, r.mpos)
			r.mpos += c
			r.cn += c
			r.left -= int64(c)
			n += c
			if r.left > 0 {
				return wsNeedMore, nil, n, 0
			}
			r.inFrame = false
			payload = r.ctl[:r.cn]
			switch r.op {
			case ws.OpPing:
				return wsPing, payload, n, 0
			case ws.OpPong:
				return wsPong, payload, n, 0
			}
			code, _, err := frame.ParseClose(payload)
			if err != nil {
				return r.fail(n, frame.CodeOf(err))
			}
			r.done = true
			return wsClose, payload, n, code
		}
		if r.left == 0 {
			r.inFrame = false
			continue
		}
		if c == 0 {
			return wsNeedMore, nil, n, 0
		}
		payload = b[n : n+c]
		ws.Cipher(payload, r.mask, r.mpos)
		r.mpos = (r.mpos + c) & 3
		r.left -= int64(c)
		n += c
		if r.left == 0 {
			r.inFrame = false
		}
		return wsData, payload, n, 0
	}
}

// check returns the close status a frame with header h fails the connection
// with, or 0 if the frame is acceptable.
func (r *wsReader) check(h ws.Header) ws.StatusCode {
	switch {
	case h.Rsv != 0, !h.Masked:
		return ws.StatusProtocolError
	}
	switch h.OpCode {
	case ws.OpBinary:
		if r.open {
			return ws.StatusProtocolError
		}
	case ws.OpContinuation:
		if !r.open {
			return ws.StatusProtocolError
		}
	case ws.OpText:
		if r.open {
			return ws.StatusProtocolError
		}
		return ws.StatusUnsupportedData
	case ws.OpClose, ws.OpPing, ws.OpPong:
		if !h.Fin || h.Length > ws.MaxControlFramePayloadSize {
			return ws.StatusProtocolError
		}
	default:
		return ws.StatusProtocolError
	}
	return 0
}

// fail makes r consume nothing more and reports the error with code.
func (r *wsReader) fail(n int, code ws.StatusCode) (wsEvent, []byte, int, ws.StatusCode) {
	r.done = true
	return wsError, nil, n, code
}
