package frame

import (
	"math"

	"github.com/gobwas/ws"
	"github.com/valyala/bytebufferpool"
)

// DefaultMaxMessage is the message size limit used when Limits.MaxMessage is
// zero or negative: 1 MiB.
const DefaultMaxMessage = 1 << 20

// maxMessageCap keeps every accepted frame length, header included,
// representable as an int on 32-bit platforms.
const maxMessageCap = math.MaxInt - MaxHeaderLen

// Limits configures a Decoder.
type Limits struct {
	// MaxMessage is the largest message accepted, in payload bytes over all
	// its fragments. A frame whose declared length would take its message
	// over the limit fails with ErrMessageTooBig (1009) as soon as its
	// length is decoded, before any of its payload arrives. Zero or negative
	// means DefaultMaxMessage.
	MaxMessage int64

	// AllowedRSV holds the RSV bits the first frame of a data message may
	// have set, in the form of ws.Header.Rsv (RSV1 is 0x4, see ws.Rsv).
	// Zero, the default, allows none, as required when no extension is
	// negotiated (§5.2). An extension such as permessage-deflate sets the
	// bits it defines and interprets them from Event.Rsv.
	//
	// The bits are allowed on the first frame of a text or binary message
	// only: a continuation or control frame with any RSV bit set fails with
	// ErrReservedBits (1002), as RFC 7692 §6.1 requires of the bit it
	// defines: "An endpoint MUST NOT set the "Per-Message Compressed" bit of
	// control frames and non-first fragments of a data message."
	//
	// A text message whose first frame has an RSV bit set carries a payload
	// the extension transformed (compressed data is not text): it is not
	// checked as UTF-8. The caller checks the payload once it has undone the
	// transformation.
	AllowedRSV byte
}

// Kind tells what an Event carries.
type Kind uint8

// Event kinds.
const (
	// None: a non-final fragment was absorbed into the assembly buffer;
	// there is nothing to do but advance.
	None Kind = iota
	// Message: a complete text or binary message.
	Message
	// Ping: a ping frame; the server answers with a pong carrying the same
	// payload (§5.5.2).
	Ping
	// Pong: a pong frame (§5.5.3).
	Pong
	// Close: a close frame (§5.5.1).
	Close
)

var kindNames = [...]string{"None", "Message", "Ping", "Pong", "Close"}

// String returns the name of the kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(?)"
}

// Event is what Decoder.Next reports for a frame. See the package
// documentation for how long Payload and Reason are valid.
type Event struct {
	Kind Kind
	// Op is the message's opcode (ws.OpText or ws.OpBinary) for a Message,
	// the frame's opcode otherwise.
	Op ws.OpCode
	// Rsv holds the RSV bits of the first frame of a Message, in the form of
	// ws.Header.Rsv. It is zero unless Limits.AllowedRSV allows some; when
	// it is not, a text Message's payload was not checked as UTF-8.
	Rsv byte
	// Code is the status of a Close: the code it carries, or 1005
	// (ws.StatusNoStatusRcvd) when its payload is empty.
	Code ws.StatusCode
	// Payload is the unmasked payload of a Message, Ping, Pong or Close
	// (for a Close the whole payload, code included).
	Payload []byte
	// Reason is the reason of a Close, valid UTF-8, aliasing Payload.
	Reason []byte
}

// Decoder decodes the frames a client sends on one connection (RFC 6455,
// server side). Its zero value is ready to use with the default Limits;
// Init sets others. It is not safe for concurrent use; one event loop owns
// it.
//
// Its state is a handful of integers: the header of the frame in progress,
// how much of that frame's payload is already unmasked and checked, the
// UTF-8 state and the open fragmented message, if any.
type Decoder struct {
	// The frame in progress, valid when hdrLen != 0.
	h    ws.Header
	done int // payload bytes already unmasked (and checked)

	// The open fragmented message, if msgOp != 0.
	msgLen int64 // payload bytes assembled so far
	asm    *bytebufferpool.ByteBuffer

	err error // sticky protocol error
	max int64 // message size limit; 0 means DefaultMaxMessage

	// unmasked counts the payload bytes unmasked over d's life; tests use
	// it to check that resumed calls do not redo work.
	unmasked int64

	hdrLen   uint8         // header length in bytes; 0 when no header is decoded
	validate bool          // payload is text and must be checked as UTF-8
	utf8     UTF8Validator // state of the text message being received
	msgOp    ws.OpCode
	msgRsv   byte
	rsv      byte // allowed RSV bits
	// delivered is set when the last event's payload is asm: it goes back
	// to the pool at the next call.
	delivered bool
}

// Init prepares d for a new connection with limits l. It releases what d
// held for a previous one, as Release does.
func (d *Decoder) Init(l Limits) {
	d.Release()
	limit := l.MaxMessage
	switch {
	case limit <= 0:
		limit = DefaultMaxMessage
	case limit > maxMessageCap:
		limit = maxMessageCap
	}
	d.max = limit
	d.rsv = l.AllowedRSV & 0x7
}

// Release returns d's pooled buffer, if any, and forgets all progress: any
// partial frame or message and any error. The limits are kept, so d can
// serve a new connection. Call it when the connection closes; the last
// event's payload must not be used afterwards.
func (d *Decoder) Release() {
	if d.asm != nil {
		bytebufferpool.Put(d.asm)
	}
	*d = Decoder{max: d.max, rsv: d.rsv, unmasked: d.unmasked}
}

// Next decodes the next frame from buf and reports it as one event.
//
// buf holds the connection's unread inbound bytes: buf[0] is the first byte
// that earlier calls have not consumed. Next returns in n how many bytes it
// consumed; the caller advances past them (and may later discard them) and
// calls Next again on what follows, in a loop, until Next returns
// ErrNeedMore.
//
// ErrNeedMore means buf does not yet hold the whole frame; n is 0. Next may
// nevertheless have made progress that it remembers: the frame header
// decoded and checked, and the payload bytes present unmasked in place and,
// for text, checked as UTF-8 (so that invalid text fails with 1007 before
// the rest of the frame arrives, §8.1). Progress is remembered as offsets
// from buf[0], never as pointers, so the caller may move the unread bytes
// to another buffer between calls. The next call must be given the same
// unread bytes, starting at the same byte and with the values Next left
// there (already unmasked bytes are not unmasked again), followed by any
// bytes that arrived since. Each payload byte is thus unmasked and checked
// once, however the input is split.
//
// Any other error is a *ProtocolError: the peer broke RFC 6455 and the
// connection must be failed (§7.1.7) with a close frame carrying its Code.
// The decoder then keeps returning that error until Release or Init.
//
// The payload of a Message, Ping, Pong or Close is valid until the next call
// to Next or Release and, when it aliases buf, until the caller discards
// those bytes; see the package documentation.
func (d *Decoder) Next(buf []byte) (ev Event, n int, err error) {
	if d.err != nil {
		return Event{}, 0, d.err
	}
	if d.delivered {
		d.delivered = false
		bytebufferpool.Put(d.asm)
		d.asm = nil
	}
	if d.hdrLen == 0 {
		if err := d.readHeader(buf); err != nil {
			if err != ErrNeedMore {
				d.err = err
			}
			return Event{}, 0, err
		}
	}

	hl := int(d.hdrLen)
	plen := int(d.h.Length)
	avail := len(buf) - hl
	if avail > plen {
		avail = plen
	}
	if avail > d.done {
		// Unmask and check the payload bytes that arrived since the last
		// call; for a large frame this is where text fails fast.
		p := buf[hl+d.done : hl+avail]
		ws.Cipher(p, d.h.Mask, d.done)
		d.unmasked += int64(len(p))
		d.done = avail
		if d.validate && !d.utf8.Write(p) {
			return d.fail(ErrInvalidUTF8)
		}
	}
	if d.done < plen {
		return Event{}, 0, ErrNeedMore
	}

	n = hl + plen
	p := buf[hl:n:n]
	// Fields one by one, not a copy of d.h: readHeader stored them one by
	// one, and a wide load over narrow stores defeats store forwarding.
	op, fin, rsv := d.h.OpCode, d.h.Fin, d.h.Rsv
	d.hdrLen, d.done = 0, 0

	switch op {
	case ws.OpText, ws.OpBinary:
		if fin {
			// A whole message in one frame: its payload stays in buf.
			if d.validate && !d.utf8.Complete() {
				return d.fail(ErrInvalidUTF8)
			}
			return Event{Kind: Message, Op: op, Rsv: rsv, Payload: p}, n, nil
		}
		d.msgOp, d.msgRsv, d.msgLen = op, rsv, int64(plen)
		d.asm = bytebufferpool.Get()
		d.asm.B = append(d.asm.B, p...)
		return Event{Kind: None, Op: op}, n, nil

	case ws.OpContinuation:
		d.asm.B = append(d.asm.B, p...)
		d.msgLen += int64(plen)
		if !fin {
			return Event{Kind: None, Op: op}, n, nil
		}
		if d.validate && !d.utf8.Complete() {
			return d.fail(ErrInvalidUTF8)
		}
		b := d.asm.B
		ev = Event{Kind: Message, Op: d.msgOp, Rsv: d.msgRsv, Payload: b[:len(b):len(b)]}
		d.msgOp, d.msgRsv, d.msgLen = 0, 0, 0
		d.delivered = true
		return ev, n, nil

	case ws.OpPing:
		return Event{Kind: Ping, Op: op, Payload: p}, n, nil

	case ws.OpPong:
		return Event{Kind: Pong, Op: op, Payload: p}, n, nil

	default: // ws.OpClose; readHeader let no other opcode through
		code, reason, err := ParseClose(p)
		if err != nil {
			return d.fail(err)
		}
		return Event{Kind: Close, Op: op, Code: code, Payload: p, Reason: reason}, n, nil
	}
}

// fail makes err the decoder's sticky error and returns it.
func (d *Decoder) fail(err error) (Event, int, error) {
	d.err = err
	return Event{}, 0, err
}

// readHeader decodes and checks the header at the start of b and makes it
// the frame in progress. Each rule is checked as soon as the bytes it needs
// are present, in a fixed order, so that an invalid frame fails the same
// way however its bytes arrive, and never later than necessary.
func (d *Decoder) readHeader(b []byte) error {
	if len(b) == 0 {
		return ErrNeedMore
	}
	b0 := b[0]
	fin := b0&finBit != 0
	rsv := (b0 & rsvBits) >> 4
	op := ws.OpCode(b0 & opBits)
	control := op.IsControl()
	if rsv != 0 && (rsv&^d.rsv != 0 || control || op == ws.OpContinuation) {
		// §5.2: "MUST be 0 unless an extension is negotiated that defines
		// meanings for non-zero values". The extensions the decoder serves
		// set them on the first frame of a data message only (see
		// Limits.AllowedRSV).
		return ErrReservedBits
	}
	switch op {
	case ws.OpContinuation:
		// §5.4: continuation frames only follow a non-final data frame.
		if d.msgOp == 0 {
			return ErrUnexpectedContinuation
		}
	case ws.OpText, ws.OpBinary:
		// §5.4: the fragments of one message are not interleaved with
		// other data frames; only control frames may come between them.
		if d.msgOp != 0 {
			return ErrExpectedContinuation
		}
	case ws.OpClose, ws.OpPing, ws.OpPong:
		// §5.5: "All control frames ... MUST NOT be fragmented."
		if !fin {
			return ErrFragmentedControl
		}
	default:
		return ErrReservedOpcode
	}

	if len(b) < 2 {
		return ErrNeedMore
	}
	b1 := b[1]
	if b1&maskBit == 0 {
		// §5.1: "The server MUST close the connection upon receiving a
		// frame that is not masked."
		return ErrUnmaskedFrame
	}
	if control && b1&lenBits > maxLen7 {
		// §5.5: "All control frames MUST have a payload length of 125
		// bytes or less".
		return ErrControlTooLong
	}
	length, n := int64(b1&lenBits), 2
	if length > maxLen7 {
		var err error
		if length, n, err = readLength(b); err != nil {
			return err
		}
	}
	if !control {
		limit := d.max
		if limit == 0 {
			limit = DefaultMaxMessage
		}
		// d.msgLen <= limit always holds, so the subtraction cannot wrap.
		// Checking the declared length here means a too-big message
		// fails before any of its payload is buffered.
		if length > limit-d.msgLen {
			return ErrMessageTooBig
		}
	}
	if len(b) < n+4 {
		return ErrNeedMore
	}
	// Field by field: a struct built aside and copied in is read back with
	// wide loads over its narrow stores, which defeats store forwarding
	// and costs more than the rest of the header.
	d.h.Fin = fin
	d.h.Rsv = rsv
	d.h.OpCode = op
	d.h.Masked = true
	d.h.Mask = [4]byte(b[n : n+4])
	d.h.Length = length
	d.hdrLen = uint8(n + 4)
	d.done = 0
	switch op {
	case ws.OpText:
		// A payload an extension transformed is not text yet (see
		// Limits.AllowedRSV).
		d.validate = rsv == 0
		d.utf8.Reset()
	case ws.OpContinuation:
		d.validate = d.msgOp == ws.OpText && d.msgRsv == 0
	default:
		d.validate = false
	}
	return nil
}
