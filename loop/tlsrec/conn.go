package tlsrec

import (
	"io"
	"slices"
)

// DefaultUpdateAfter is how many records Conn protects with one key before
// it moves to the next with a KeyUpdate of its own: RFC 8446 §5.5 allows
// AES-GCM some 2^24.5 full-size records per key.
const DefaultUpdateAfter = 1 << 24

const (
	typeNewSessionTicket = 4  // HandshakeType new_session_ticket (RFC 8446 §4)
	typeKeyUpdate        = 24 // HandshakeType key_update
	hsHeaderLen          = 4  // msg_type and a 24-bit length
	keyUpdateLen         = hsHeaderLen + 1
	alertLevelWarn       = 1
	alertLevelFatal      = 2
)

// Conn is the record layer of one connection after its handshake: In
// opens what the peer sends, Out protects what this side sends. Not safe
// for concurrent use; the zero Conn with In and Out initialised is a
// server's.
type Conn struct {
	In, Out Half
	// UpdateAfter overrides DefaultUpdateAfter when not 0.
	UpdateAfter uint64
	// Client makes Conn a client's record layer: it also accepts the
	// NewSessionTicket messages a server sends after the handshake, and
	// skips them (a client may ignore them, RFC 8446 §4.6.1), since it
	// resumes no session.
	Client bool

	hs    [keyUpdateLen]byte // a handshake message split over records, so far
	hsn   uint8
	skip  int  // bytes of a NewSessionTicket still to skip
	owed  bool // the peer asked for a KeyUpdate: send one first
	ended bool // close_notify received: nothing after it is read
}

// Release drops both AEADs: an idle connection keeps only secrets, keys
// and sequence numbers. The next record rebuilds what it needs.
func (c *Conn) Release() {
	c.In.Release()
	c.Out.Release()
}

// Holding reports whether either AEAD is held.
func (c *Conn) Holding() bool { return c.In.Holding() || c.Out.Holding() }

// Decrypt opens the whole records at the start of src, in order, and
// appends their application data to dst. It returns how many bytes of src
// it consumed (a partial record at the end is left) and dst extended. A
// KeyUpdate from the peer is applied (and, when the peer asked, one of the
// server's is owed before its next record: Encrypt sends it). err is
// io.EOF after the peer's close_notify, a *PeerAlert after any other
// alert the peer sent (user_canceled is ignored, RFC 8446 §6.1), or one
// of the package's errors, for which the caller sends AlertFor(err)
// before it closes; data decrypted before the failing record is in dst.
func (c *Conn) Decrypt(dst, src []byte) (int, []byte, error) {
	n := 0
	for !c.ended {
		m, err := Next(src[n:])
		if err != nil {
			return n, dst, err
		}
		if m == 0 {
			break
		}
		if cap(dst)-len(dst) < m {
			dst = slices.Grow(dst, m)
		}
		start := len(dst)
		typ, out, err := c.In.Open(dst, src[n:n+m])
		if err != nil {
			return n, dst, err
		}
		n += m
		content := out[start:]
		switch typ {
		case TypeApplicationData:
			if c.hsn > 0 {
				// RFC 8446 §5.1: a handshake message split over records
				// has no other record between its parts.
				return n, dst, ErrUnexpected
			}
			dst = out
		case TypeHandshake:
			if err := c.handshake(content); err != nil {
				return n, dst, err
			}
		case TypeAlert:
			if len(content) != 2 {
				return n, dst, ErrDecode
			}
			switch a := Alert(content[1]); a {
			case AlertCloseNotify:
				c.ended = true
				return n, dst, io.EOF
			case AlertUserCanceled:
			default:
				return n, dst, &PeerAlert{Alert: a}
			}
		default:
			return n, dst, ErrUnexpected
		}
	}
	if c.ended {
		return n, dst, io.EOF
	}
	return n, dst, nil
}

// handshake takes the content of a handshake record. The only
// post-handshake message a server that requests no client certificate
// after the handshake can receive is KeyUpdate (RFC 8446 §4.6); a client
// also receives NewSessionTicket. Anything else is unexpected.
func (c *Conn) handshake(b []byte) error {
	if len(b) == 0 {
		return ErrUnexpected // §5.1: no zero-length handshake fragments
	}
	for len(b) > 0 {
		if c.skip > 0 {
			k := min(c.skip, len(b))
			c.skip -= k
			b = b[k:]
			if c.skip == 0 {
				c.hsn = 0
			}
			continue
		}
		k := copy(c.hs[c.hsn:hsHeaderLen], b)
		if c.hsn < hsHeaderLen {
			c.hsn += uint8(k)
			b = b[k:]
		}
		switch {
		case c.hs[0] == typeKeyUpdate:
		case c.hs[0] == typeNewSessionTicket && c.Client:
			if c.hsn < hsHeaderLen {
				return nil // the rest of the header comes in the next record
			}
			// §4.6.1: a ticket of at least lifetime, age_add, a nonce
			// length, a ticket length and an extensions length.
			n := int(c.hs[1])<<16 | int(c.hs[2])<<8 | int(c.hs[3])
			if n < 4+4+1+2+2 {
				return ErrDecode
			}
			c.skip = n
			continue
		default:
			return ErrUnexpected
		}
		if c.hsn < hsHeaderLen {
			return nil
		}
		if c.hs[1] != 0 || c.hs[2] != 0 || c.hs[3] != 1 {
			return ErrDecode
		}
		if len(b) == 0 {
			return nil // the request byte comes in the next record
		}
		req := b[0]
		b = b[1:]
		c.hsn = 0
		// §5.1: a message that changes keys ends its record.
		if len(b) > 0 {
			return ErrUnexpected
		}
		if req > 1 {
			return ErrParameter
		}
		if err := c.In.Update(); err != nil {
			return err
		}
		if req == 1 {
			c.owed = true // §4.6.3: before the next application data
		}
	}
	return nil
}

// Encrypt appends to dst the records carrying the concatenation of parts,
// in records of at most MaxPlaintext bytes, preceded by a KeyUpdate when
// the peer asked for one or the key has protected UpdateAfter records.
// Nothing is allocated when dst has room for the parts plus Overhead per
// record (and a KeyUpdate record).
func (c *Conn) Encrypt(dst []byte, parts ...[]byte) ([]byte, error) {
	limit := c.UpdateAfter
	if limit == 0 {
		limit = DefaultUpdateAfter
	}
	if c.owed || c.Out.seq >= limit {
		var err error
		msg := [keyUpdateLen]byte{typeKeyUpdate, 0, 0, 1, 0} // update_not_requested
		if dst, err = c.Out.Seal(dst, TypeHandshake, msg[:]); err != nil {
			return dst, err
		}
		if err = c.Out.Update(); err != nil {
			return dst, err
		}
		c.owed = false
	}
	i, off := 0, 0
	for {
		for i < len(parts) && off == len(parts[i]) {
			i, off = i+1, 0
		}
		if i == len(parts) {
			return dst, nil
		}
		start := len(dst)
		dst = append(dst, 0, 0, 0, 0, 0)
		room := MaxPlaintext
		for room > 0 && i < len(parts) {
			k := min(room, len(parts[i])-off)
			dst = append(dst, parts[i][off:off+k]...)
			room -= k
			off += k
			if off == len(parts[i]) {
				i, off = i+1, 0
			}
		}
		var err error
		if dst, err = c.Out.SealTail(dst, start, TypeApplicationData); err != nil {
			return dst[:start], err
		}
	}
}

// Alert appends a record carrying alert a: close_notify as a warning,
// anything else as fatal.
func (c *Conn) Alert(dst []byte, a Alert) ([]byte, error) {
	level := byte(alertLevelFatal)
	if a == AlertCloseNotify || a == AlertUserCanceled {
		level = alertLevelWarn
	}
	msg := [2]byte{level, byte(a)}
	return c.Out.Seal(dst, TypeAlert, msg[:])
}
