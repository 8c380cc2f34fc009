package frame

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// MaxHeaderLen is the longest frame header RFC 6455 §5.2 allows: 2 bytes,
// 8 bytes of extended payload length and a 4-byte masking key.
const MaxHeaderLen = 14

// MaxServerHeaderLen is the longest header of a server frame, which carries
// no masking key (§5.1).
const MaxServerHeaderLen = 10

// Bits of the first two header bytes (§5.2).
const (
	finBit  = 0x80 // byte 0: final fragment
	rsvBits = 0x70 // byte 0: RSV1, RSV2, RSV3
	opBits  = 0x0f // byte 0: opcode
	maskBit = 0x80 // byte 1: masking key present
	lenBits = 0x7f // byte 1: payload length or 126/127 marker

	len16Marker = 126 // a 16-bit length follows
	len64Marker = 127 // a 64-bit length follows

	maxLen7  = 125    // longest length held in byte 1
	maxLen16 = 0xffff // longest length held in 16 bits
)

// ParseHeader decodes the frame header at the start of b without allocating
// and returns it with its length in bytes. Its only check is the one needed
// to represent the length: a 64-bit length with the most significant bit set
// is ErrLengthOverflow (§5.2). If b holds only part of the header it returns
// ErrNeedMore. Rules about opcodes, masking and the payload are Decoder's.
//
// The RSV bits are reported as ws.Header.Rsv does: RSV1 is 0x4, RSV2 0x2,
// RSV3 0x1.
func ParseHeader(b []byte) (h ws.Header, n int, err error) {
	length, n, err := readLength(b)
	if err != nil {
		return ws.Header{}, 0, err
	}
	h = ws.Header{
		Fin:    b[0]&finBit != 0,
		Rsv:    (b[0] & rsvBits) >> 4,
		OpCode: ws.OpCode(b[0] & opBits),
		Masked: b[1]&maskBit != 0,
		Length: length,
	}
	if h.Masked {
		if len(b) < n+4 {
			return ws.Header{}, 0, ErrNeedMore
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	return h, n, nil
}

// readLength decodes the payload length of the header at the start of b and
// returns it with the number of header bytes up to, not including, the
// masking key.
//
// RFC 6455 §5.2 says the minimal number of bytes must be used to encode the
// length; like most endpoints this decoder accepts longer encodings, as they
// are unambiguous.
func readLength(b []byte) (length int64, n int, err error) {
	if len(b) < 2 {
		return 0, 0, ErrNeedMore
	}
	switch l := b[1] & lenBits; l {
	case len16Marker:
		if len(b) < 4 {
			return 0, 0, ErrNeedMore
		}
		return int64(binary.BigEndian.Uint16(b[2:4])), 4, nil
	case len64Marker:
		if len(b) < 10 {
			return 0, 0, ErrNeedMore
		}
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			// §5.2: "the most significant bit MUST be 0".
			return 0, 0, ErrLengthOverflow
		}
		return int64(u), 10, nil
	default:
		return int64(l), 2, nil
	}
}
