package tunnel

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// clientFrame returns a frame as a client sends it: b0 is its first byte
// (FIN, RSV, opcode), masked with a fixed key unless unmasked.
func clientFrame(b0 byte, payload []byte, unmasked bool) []byte {
	out := []byte{b0}
	mask := byte(0x80)
	if unmasked {
		mask = 0
	}
	switch n := len(payload); {
	case n <= 125:
		out = append(out, mask|byte(n))
	case n <= 0xffff:
		out = append(out, mask|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, mask|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	p := append([]byte(nil), payload...)
	if !unmasked {
		key := [4]byte{0x12, 0x34, 0x56, 0x78}
		out = append(out, key[:]...)
		ws.Cipher(p, key, 0)
	}
	return append(out, p...)
}
