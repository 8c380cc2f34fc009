package frame

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/gobwas/ws"
)

// testMask is the masking key of the frames built by tests.
var testMask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// spec describes a client frame to build, valid or not.
type spec struct {
	fin      bool
	rsv      byte // as ws.Header.Rsv
	op       ws.OpCode
	unmasked bool
	len7     int    // if non-zero, replaces the 7-bit length field (with no extended length)
	ext64    uint64 // with len7 == 127, the 64-bit length written
	payload  []byte
}

// build encodes s as a client would: masked with testMask unless s.unmasked.
func build(s spec) []byte {
	var h [MaxHeaderLen]byte
	n := PutHeader(&h, s.op, s.fin, len(s.payload))
	h[0] |= s.rsv << 4
	out := append([]byte(nil), h[:n]...)
	switch s.len7 {
	case 0:
	case 127:
		out = append(out[:1], 127)
		out = append(out, 0, 0, 0, 0, 0, 0, 0, 0)
		for i := range 8 {
			out[2+i] = byte(s.ext64 >> (56 - 8*i))
		}
	default:
		out = append(out[:1], byte(s.len7))
	}
	if s.unmasked {
		return append(out, s.payload...)
	}
	out[1] |= maskBit
	out = append(out, testMask[:]...)
	start := len(out)
	out = append(out, s.payload...)
	ws.Cipher(out[start:], testMask, 0)
	return out
}

// mf builds a masked client frame.
func mf(op ws.OpCode, fin bool, payload string) []byte {
	return build(spec{fin: fin, op: op, payload: []byte(payload)})
}

// closeFrame builds a masked close frame with a code and a reason.
func closeFrame(code uint16, reason string) []byte {
	p := append([]byte{byte(code >> 8), byte(code)}, reason...)
	return build(spec{fin: true, op: ws.OpClose, payload: p})
}

// cat concatenates frames into one stream.
func cat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

// rec is an Event with copied payload, comparable and printable.
type rec struct {
	Kind    Kind
	Op      ws.OpCode
	Rsv     byte
	Code    ws.StatusCode
	Payload string
	Reason  string
}

func (r rec) String() string {
	p := r.Payload
	if len(p) > 40 {
		p = fmt.Sprintf("%.40q...(%d bytes)", p, len(p))
	} else {
		p = fmt.Sprintf("%q", p)
	}
	return fmt.Sprintf("{%v op=%d rsv=%d code=%d %s reason=%q}", r.Kind, r.Op, r.Rsv, r.Code, p, r.Reason)
}

func record(ev Event) rec {
	return rec{ev.Kind, ev.Op, ev.Rsv, ev.Code, string(ev.Payload), string(ev.Reason)}
}

// msg, none, ping, pong and closeEv build expected events.
func msg(op ws.OpCode, p string) rec { return rec{Kind: Message, Op: op, Payload: p} }
func none(op ws.OpCode) rec          { return rec{Kind: None, Op: op} }
func ping(p string) rec              { return rec{Kind: Ping, Op: ws.OpPing, Payload: p} }
func pong(p string) rec              { return rec{Kind: Pong, Op: ws.OpPong, Payload: p} }
func closeEv(code ws.StatusCode, payload, reason string) rec {
	return rec{Kind: Close, Op: ws.OpClose, Code: code, Payload: payload, Reason: reason}
}

// outcome is everything a decoding run produced.
type outcome struct {
	events []rec
	err    error // ErrNeedMore when the input ran out, else a protocol error
	rest   int   // unconsumed bytes when err is ErrNeedMore
}

func (o outcome) equal(p outcome) bool {
	return slices.Equal(o.events, p.events) && o.err == p.err && o.rest == p.rest
}

func (o outcome) String() string {
	return fmt.Sprintf("events=%v err=%v rest=%d", o.events, o.err, o.rest)
}

// feed decodes stream as an event loop would see it arrive in pieces ending
// at the offsets in cuts (ascending), then at len(stream). The stream is
// copied first: decoding unmasks in place. With realloc, the unread bytes
// move to a new backing array whenever bytes arrive, as a growing inbound
// buffer may; either way Next sees a slice whose capacity equals its length,
// so reading past the end would panic. It also checks the contract of Next:
// n == 0 with ErrNeedMore, n > 0 with an event.
func feed(l Limits, stream []byte, cuts []int, realloc bool) (outcome, error) {
	var d Decoder
	d.Init(l)
	defer d.Release()
	return feedWith(&d, stream, cuts, realloc)
}

func feedWith(d *Decoder, stream []byte, cuts []int, realloc bool) (outcome, error) {
	src := bytes.Clone(stream)
	var in []byte
	var out outcome
	pos := 0
	for _, cut := range append(slices.Clone(cuts), len(src)) {
		if cut < pos {
			continue
		}
		if realloc {
			nb := make([]byte, len(in), len(in)+cut-pos)
			copy(nb, in)
			in = append(nb, src[pos:cut]...)
		} else {
			in = append(in, src[pos:cut]...)
		}
		pos = cut
		for {
			ev, n, err := d.Next(in[:len(in):len(in)])
			if err == ErrNeedMore {
				if n != 0 {
					return out, fmt.Errorf("ErrNeedMore with n = %d", n)
				}
				break
			}
			if err != nil {
				if n != 0 {
					return out, fmt.Errorf("error %v with n = %d", err, n)
				}
				if _, ok := errors.AsType[*ProtocolError](err); !ok {
					return out, fmt.Errorf("error %v is not a *ProtocolError", err)
				}
				// The error is sticky.
				if _, _, again := d.Next(in); again != err {
					return out, fmt.Errorf("after %v, Next returned %v", err, again)
				}
				out.err = err
				return out, nil
			}
			if n <= 0 || n > len(in) {
				return out, fmt.Errorf("event %v with n = %d of %d", record(ev), n, len(in))
			}
			out.events = append(out.events, record(ev))
			in = in[n:]
		}
	}
	out.err = ErrNeedMore
	out.rest = len(in)
	return out, nil
}

// whole decodes stream given in one piece.
func whole(l Limits, stream []byte) (outcome, error) { return feed(l, stream, nil, false) }

// bytewise returns the cuts that feed a stream of n bytes one byte at a time.
func bytewise(n int) []int {
	cuts := make([]int, n)
	for i := range cuts {
		cuts[i] = i
	}
	return cuts
}
