//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package loop

import (
	"errors"
	"math"
	"unsafe"

	"github.com/gobwas/ws"

	"github.com/upgate/upgate/loop/deflate"
	"github.com/upgate/upgate/loop/frame"
	"github.com/upgate/upgate/parser"
)

// Compression is the permessage-deflate agreement (RFC 7692) of an
// ActUpgrade, set with Decision.Deflate. Its zero value agrees to nothing.
type Compression struct {
	// Enabled says the connection negotiated permessage-deflate.
	Enabled bool
	// Params is what was agreed, as deflate.Negotiate returned it. The loop
	// inflates every message from an empty window, so Params must include
	// client_no_context_takeover (deflate.Config.ContextTakeover false, the
	// default, always does); the server compresses every message from an
	// empty window too, which any agreement allows.
	Params deflate.Params
	// Level is the compression level of outgoing messages,
	// deflate.MinLevel..deflate.MaxLevel (deflate.DefaultLevel, -1, is the
	// library's default; 0 stores without compressing).
	Level int
	// Threshold is the smallest payload, in bytes, that Write and Send
	// compress: smaller messages go out uncompressed (RSV1 clear), as
	// RFC 7692 §6 lets a sender choose per message. Zero or negative
	// compresses every message.
	Threshold int
}

// errDeflateConfig answers a handshake whose Decision agreed to
// permessage-deflate with parameters the loop cannot honour.
var errDeflateConfig = &parser.Error{Status: 500, Reason: "loop: permessage-deflate agreed with context takeover by the client, or with a compression level out of range", Body: "The server could not answer this request."}

// errCorruptDeflate fails a connection whose compressed message does not
// inflate (see deflate.ErrCorrupt for the choice of 1007).
var errCorruptDeflate = &frame.ProtocolError{Code: ws.StatusInvalidFramePayloadData, Reason: "invalid compressed data"}

// rsv1 is the "Per-Message Compressed" bit (RFC 7692 §6) in the form of
// ws.Header.Rsv; b0rsv1 is the same bit in a frame's first byte.
const (
	rsv1   byte = 0x4
	b0rsv1 byte = 0x40
)

// inflateKeep is the largest inflate buffer a loop keeps between messages.
const inflateKeep = 1 << 20

// pmd is a connection's permessage-deflate state: 8 bytes, kept in
// conn.pmd as one atomic word (word, agreement), since a reused conn gets
// another connection's agreement while a stale handle may still read it.
type pmd struct {
	min    uint32 // Compression.Threshold, clamped to 0..MaxUint32
	params deflate.Params
	lvl    uint8 // Compression.Level - deflate.MinLevel + 1; 0 when not negotiated
}

// The word form of pmd is its bytes: pmd is 8 bytes and 4-aligned, so a
// copy through unsafe.Pointer into a uint64 and back is exact.
var _ [8 - unsafe.Sizeof(pmd{})]byte
var _ [unsafe.Sizeof(pmd{}) - 8]byte

// word returns z as the bits conn.pmd stores.
func (z pmd) word() uint64 {
	var w uint64
	*(*pmd)(unsafe.Pointer(&w)) = z
	return w
}

// agreement returns c's permessage-deflate agreement.
func (c *conn) agreement() pmd {
	w := c.pmd.Load()
	return *(*pmd)(unsafe.Pointer(&w))
}

// on reports whether the connection negotiated permessage-deflate.
func (z pmd) on() bool { return z.lvl != 0 }

// level returns the compression level.
func (z pmd) level() int { return int(z.lvl) - 1 + deflate.MinLevel }

// compresses reports whether a data message of n bytes goes out compressed.
func (z pmd) compresses(op ws.OpCode, n int) bool {
	return z.lvl != 0 && (op == ws.OpText || op == ws.OpBinary) && uint64(n) >= uint64(z.min)
}

// agreed returns the pmd of cz, which check accepted.
func agreed(cz *Compression) pmd {
	if !cz.Enabled {
		return pmd{}
	}
	return pmd{
		min:    uint32(min(uint64(max(cz.Threshold, 0)), math.MaxUint32)),
		params: cz.Params,
		lvl:    uint8(cz.Level - deflate.MinLevel + 1),
	}
}

// check reports whether the loop can honour cz.
func (cz *Compression) check() bool {
	return !cz.Enabled || cz.Params.ClientNoContextTakeover() &&
		cz.Level >= deflate.MinLevel && cz.Level <= deflate.MaxLevel
}

// switching writes the 101 of an ActUpgrade with d's subprotocol and
// extensions, permessage-deflate first when d agreed to it, and records the
// agreement in c. It answers 500 instead and returns false when the loop
// cannot honour the agreement.
func (l *evloop) switching(c *conn, accept *[parser.AcceptLen]byte, d *Decision) bool {
	cz := &d.Compression
	if !cz.check() {
		l.respondError(c, errDeflateConfig)
		return false
	}
	ext := d.Extensions
	if cz.Enabled {
		l.ext = deflate.AppendResponse(l.ext[:0], cz.Params)
		if len(ext) > 0 {
			l.ext = append(append(l.ext, ", "...), ext...)
		}
		ext = l.ext
	}
	l.resp = parser.AppendSwitching(l.resp[:0], accept, d.Subprotocol, ext)
	l.write(c, l.resp)
	c.pmd.Store(agreed(cz).word())
	return true
}

// inflate returns the payload of a compressed message, inflated into the
// loop's buffer, never beyond c's message size limit: a message that would
// inflate past it fails with 1009 without inflating the rest (RFC 7692
// §8.1 leaves the limit to the implementation), data that does not inflate
// with 1007, and text that is not UTF-8 once inflated with 1007.
func (l *evloop) inflate(c *conn, op ws.OpCode, payload []byte) ([]byte, error) {
	limit := int(min(uint64(c.maxMsg), math.MaxInt))
	out, err := l.zl.Decompressor().Decompress(l.zin[:0], payload, limit)
	l.zin = out[:0]
	switch {
	case errors.Is(err, deflate.ErrTooLarge):
		return nil, frame.ErrMessageTooBig
	case err != nil:
		return nil, errCorruptDeflate
	}
	if op == ws.OpText && !frame.ValidUTF8(out) {
		return nil, frame.ErrInvalidUTF8
	}
	return out, nil
}

// trimInflate drops an inflate buffer grown past what a loop keeps.
func (l *evloop) trimInflate() {
	if cap(l.zin) > inflateKeep {
		l.zin = nil
	}
}

// compress compresses a message for c on the loop, into the loop's buffer.
func (l *evloop) compress(c *conn, payload []byte) ([]byte, error) {
	a := c.agreement()
	z, err := l.zl.Compressor(a.level(), a.params.ServerMaxWindowBits())
	if err != nil {
		return nil, err
	}
	out, err := z.Compress(l.zout[:0], payload)
	l.zout = out[:0]
	return out, err
}

// trimCompress drops a compression buffer grown past what a loop keeps.
func (l *evloop) trimCompress() {
	if cap(l.zout) > inflateKeep {
		l.zout = nil
	}
}

// appendCompressed appends to dst one compressed frame of op carrying
// payload for a connection with agreement a, with a Compressor from the
// server's pool (any goroutine).
func (s *Server) appendCompressed(dst []byte, a *pmd, op ws.OpCode, payload []byte) ([]byte, error) {
	z, err := s.zpool.Get(a.level(), a.params.ServerMaxWindowBits())
	if err != nil {
		return dst, err
	}
	// Compress behind room for the longest header, then move the frame
	// down against the header it turned out to need.
	const room = frame.MaxServerHeaderLen
	start := len(dst)
	var zero [room]byte
	dst = append(dst, zero[:]...)
	dst, err = z.Compress(dst, payload)
	s.zpool.Put(z)
	if err != nil {
		return dst[:start], err
	}
	n := len(dst) - start - room
	var h [frame.MaxHeaderLen]byte
	hl := frame.PutHeader(&h, op, true, n)
	h[0] |= b0rsv1
	at := start + room - hl
	copy(dst[at:], h[:hl])
	copy(dst[start:], dst[at:])
	return dst[:len(dst)-(at-start)], nil
}

// Compression returns the permessage-deflate agreement recorded for the
// connection at its 101, with Threshold clamped to 0..MaxUint32; the zero
// Compression when it did not negotiate permessage-deflate, and for the
// zero Conn or once its state was reused.
//
// Goroutines: the loop writes the agreement once, while it writes the 101
// and before it calls Handler.OnOpen, and never again for this connection.
// A goroutine that holds the Conn from before the 101 (from OnRequest, as
// one resolving an ActDefer) reads the zero Compression until then.
func (h Conn) Compression() Compression {
	z, ok := h.agreement()
	if !ok || !z.on() {
		return Compression{}
	}
	return Compression{Enabled: true, Params: z.params, Level: z.level(), Threshold: int(z.min)}
}

// agreement returns the agreement of h's connection; false for the zero
// Conn or once its state was reused.
func (h Conn) agreement() (pmd, bool) {
	c := h.c
	if c == nil {
		return pmd{}, false
	}
	z := c.agreement()
	return z, c.id.Load() == h.id
}

// Compresses reports whether Write and Send compress a message of op and n
// payload bytes on the connection, and if so with which compression level
// and server window bits (server_max_window_bits, 8..15): a frame
// compressed with those, RSV1 set, may go to it through SendFrame or
// WriteFrame, and so may the same frame uncompressed. ok is false for a
// connection that did not negotiate permessage-deflate, for opcodes other
// than text and binary and for payloads below the threshold. Goroutines:
// as Compression. It allocates nothing.
func (h Conn) Compresses(op ws.OpCode, n int) (level, windowBits int, ok bool) {
	z, cur := h.agreement()
	if !cur || !z.compresses(op, n) {
		return 0, 0, false
	}
	return z.level(), z.params.ServerMaxWindowBits(), true
}
