package frame

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// HeaderLen returns the length of the header of an unmasked (server) frame
// with a payload of payloadLen bytes: 2, 4 or 10 (§5.2). It panics if
// payloadLen is negative.
func HeaderLen(payloadLen int) int {
	switch {
	case payloadLen < 0:
		panic("frame: negative payload length")
	case payloadLen <= maxLen7:
		return 2
	case payloadLen <= maxLen16:
		return 4
	default:
		return 10
	}
}

// PutHeader writes the header of an unmasked (server) frame into h and
// returns its length, as HeaderLen(payloadLen). It suits writev callers that
// keep the header apart from the payload. The length uses the minimal
// encoding (§5.2). It panics if payloadLen is negative.
//
// The caller must respect §5.5: control frames have fin set and at most 125
// bytes of payload.
func PutHeader(h *[MaxHeaderLen]byte, op ws.OpCode, fin bool, payloadLen int) int {
	b0 := byte(op) & opBits
	if fin {
		b0 |= finBit
	}
	h[0] = b0
	switch {
	case payloadLen < 0:
		panic("frame: negative payload length")
	case payloadLen <= maxLen7:
		h[1] = byte(payloadLen)
		return 2
	case payloadLen <= maxLen16:
		h[1] = len16Marker
		binary.BigEndian.PutUint16(h[2:4], uint16(payloadLen))
		return 4
	default:
		h[1] = len64Marker
		binary.BigEndian.PutUint64(h[2:10], uint64(payloadLen))
		return 10
	}
}

// AppendHeader appends the header of an unmasked (server) frame to dst, as
// PutHeader writes it, and returns the extended slice. It does not allocate
// when dst has room for HeaderLen(payloadLen) more bytes.
func AppendHeader(dst []byte, op ws.OpCode, fin bool, payloadLen int) []byte {
	var h [MaxHeaderLen]byte
	n := PutHeader(&h, op, fin, payloadLen)
	return append(dst, h[:n]...)
}

// AppendFrame appends an unmasked (server) frame carrying payload to dst and
// returns the extended slice. It does not allocate when dst has room for
// HeaderLen(len(payload)) + len(payload) more bytes.
func AppendFrame(dst []byte, op ws.OpCode, fin bool, payload []byte) []byte {
	dst = AppendHeader(dst, op, fin, len(payload))
	return append(dst, payload...)
}

// AppendClose appends a close frame with code and reason to dst (§5.5.1)
// and returns the extended slice.
//
// The reason is truncated so that the payload stays within the 125 bytes of
// a control frame, cutting before, never inside, a UTF-8 sequence; it should
// be valid UTF-8 (§5.5.1). If code is 1005 (ws.StatusNoStatusRcvd) or 0,
// neither of which may appear on the wire (§7.4.1), the frame has an empty
// payload and reason is ignored. Any other code is written as given; see
// ValidCloseCode.
func AppendClose(dst []byte, code ws.StatusCode, reason string) []byte {
	if code == 0 || code == ws.StatusNoStatusRcvd {
		return AppendHeader(dst, ws.OpClose, true, 0)
	}
	reason = truncateReason(reason)
	dst = AppendHeader(dst, ws.OpClose, true, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, reason...)
}

// truncateReason shortens r to at most maxCloseReason bytes without
// splitting a UTF-8 sequence: when the first byte left out is a continuation
// byte, the cut moves back to the start of its sequence (at most 3 bytes).
func truncateReason(r string) string {
	if len(r) <= maxCloseReason {
		return r
	}
	cut := maxCloseReason
	for i := 0; i < 3 && cut > 0 && r[cut]&0xc0 == 0x80; i++ {
		cut--
	}
	return r[:cut]
}
