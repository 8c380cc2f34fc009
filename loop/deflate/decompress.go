package deflate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/klauspost/compress/flate"
)

// minGrow is the least by which Decompress grows dst when it is full.
const minGrow = 512

// copyKeep is the largest payload, with its tail, that Decompress copies
// into the Decompressor's input buffer, and so the most that buffer holds.
// A larger payload is read in place.
const copyKeep = 1 << 20

// Decompressor inflates the payloads of compressed messages for
// permessage-deflate without context takeover: every message is inflated
// from an empty window. It accepts any window size the sender used (8..15
// bits): its own window is always 32 KiB. It is not safe for concurrent use.
type Decompressor struct {
	r     io.Reader
	in    messageReader // a payload over copyKeep, read in place
	buf   []byte        // a payload and tail, copied; cap at most copyKeep
	br    bytes.Reader  // reads buf
	keep  int           // copyKeep; tests lower it to read payloads in place
	probe [1]byte
}

// NewDecompressor returns a Decompressor.
func NewDecompressor() *Decompressor {
	d := &Decompressor{keep: copyKeep}
	d.r = flate.NewReader(&d.in)
	return d
}

// Decompress appends to dst the message inflated from payload, the payload
// of one compressed message (RFC 7692 §7.2.2): it reads payload and then the
// 00 00 ff ff tail the sender removed.
//
// It copies payload and the tail into a buffer of its own, reused from one
// message to the next, and inflates from a *bytes.Reader over it: the
// library reads that type without an interface call per byte, which saves
// more than copying the compressed bytes costs. The buffer grows only with
// the payloads given, up to 1 MiB; a larger payload is read in place,
// through an interface call per byte, rather than copied.
//
// It inflates at most limit bytes (a negative limit counts as 0): as soon as
// the message would exceed limit, it stops and returns ErrTooLarge, with
// dst extended by exactly limit bytes of no meaning; the rest of the payload
// is never inflated (the library works ahead by at most its 32 KiB window).
// Data that is not valid DEFLATE returns an error wrapping ErrCorrupt; so
// does an empty payload, which with the tail is no DEFLATE block (the empty
// message is the payload 00, §7.2.3.6).
//
// The message ends at the end of the payload, or at the first block with
// BFINAL set: RFC 7692 §7.2.3.4 allows a sender to end a message with a
// final block and shows such a payload followed by one more byte, the
// header of an empty stored block, so that the receiver can append the tail
// as usual. Whatever follows a final block is not DEFLATE data (RFC 1951
// §3.2.3: it is the last block of the data set) and, without context
// takeover, cannot affect the next message: Decompress ignores it.
//
// dst is grown only as the inflated bytes need it, never on a size the peer
// declares; with dst's capacity large enough, Decompress allocates nothing.
func (d *Decompressor) Decompress(dst, payload []byte, limit int) ([]byte, error) {
	limit = max(limit, 0)
	var src flate.Reader = &d.br
	if n := len(payload) + len(tail); n <= d.keep {
		if cap(d.buf) < n {
			d.buf = make([]byte, 0, min(max(n, 2*cap(d.buf)), d.keep))
		}
		d.buf = append(append(d.buf[:0], payload...), tail...)
		d.br.Reset(d.buf)
	} else {
		d.in.reset(payload)
		src = &d.in
	}
	// The reader returned by flate.NewReader always implements Resetter.
	_ = d.r.(flate.Resetter).Reset(src, nil)
	start := len(dst)
	for {
		n := len(dst) - start
		if n == limit {
			// One more byte would exceed the limit: see if there is one.
			m, err := d.r.Read(d.probe[:])
			switch {
			case m > 0:
				return dst, ErrTooLarge
			case err == io.EOF:
				return dst, nil
			case err != nil:
				return dst, corrupt(err)
			}
			continue
		}
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, min(limit-n, max(n, minGrow)))
		}
		room := min(cap(dst)-len(dst), limit-n)
		m, err := d.r.Read(dst[len(dst) : len(dst)+room])
		dst = dst[:len(dst)+m]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, corrupt(err)
		}
	}
}

// corrupt wraps the inflater's error in ErrCorrupt. io.ErrUnexpectedEOF
// means the payload ended inside a block.
func corrupt(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: payload ends inside a block", ErrCorrupt)
	}
	return fmt.Errorf("%w: %v", ErrCorrupt, err)
}
