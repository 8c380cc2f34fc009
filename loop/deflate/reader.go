package deflate

import "io"

// tail is what the receiver appends to a message's payload: the LEN and
// NLEN of the empty non-final stored block that the sender removed (RFC 7692
// §7.2.2), then an empty final stored block (01 00 00 ff ff). The final
// block lets the inflater report a clean io.EOF when the payload ended on a
// block boundary, so that a payload cut inside a block is told apart from a
// complete one: the former runs past the tail and fails.
const tail = "\x00\x00\xff\xff\x01\x00\x00\xff\xff"

// messageReader reads a payload then tail without copying the payload, for
// a payload too large for the Decompressor's input buffer. It
// implements io.ByteReader, so the inflater reads from it directly and adds
// no buffering of its own.
type messageReader struct {
	p []byte
	i int // bytes read so far, payload then tail
}

// reset starts reading payload.
func (r *messageReader) reset(payload []byte) {
	r.p = payload
	r.i = 0
}

// ReadByte returns the next byte of the payload, then of the tail.
func (r *messageReader) ReadByte() (byte, error) {
	if r.i < len(r.p) {
		b := r.p[r.i]
		r.i++
		return b, nil
	}
	if j := r.i - len(r.p); j < len(tail) {
		r.i++
		return tail[j], nil
	}
	return 0, io.EOF
}

// Read copies the next bytes of the payload, then of the tail.
func (r *messageReader) Read(b []byte) (int, error) {
	n := 0
	if r.i < len(r.p) {
		n = copy(b, r.p[r.i:])
		r.i += n
	}
	if j := r.i - len(r.p); n < len(b) && j >= 0 && j < len(tail) {
		m := copy(b[n:], tail[j:])
		r.i += m
		n += m
	}
	if n == 0 && len(b) > 0 {
		return 0, io.EOF
	}
	return n, nil
}
