package parser

import (
	"encoding/binary"
	"math/bits"
)

// SWAR constants: one byte value repeated in every lane of a word.
const (
	lanes01 = 0x0101010101010101
	lanes20 = 0x2020202020202020
	lanes21 = 0x2121212121212121
	lanes7f = 0x7f7f7f7f7f7f7f7f
	lanes80 = 0x8080808080808080
)

// suspectTargetWord reports whether x may hold a byte outside 0x21–0x7E.
func suspectTargetWord(x uint64) bool {
	below := (x - lanes21) &^ x & lanes80
	y := x ^ lanes7f
	del := (y - lanes01) &^ y & lanes80
	return below|del|x&lanes80 != 0
}

// valueSpan returns the length of the longest prefix of b made of bytes
// allowed in a field value (RFC 9110 §5.5), eight at a time. The lowest
// flagged lane of a suspect word is exact (borrows only run upwards), so
// the scan jumps straight to it; only an HTAB there needs a closer look.
func valueSpan(b []byte) int {
	i := 0
	for i+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[i:])
		y := x ^ lanes7f
		m := ((x - lanes20) &^ x & lanes80) | ((y - lanes01) &^ y & lanes80)
		if m == 0 {
			i += 8
			continue
		}
		k := i + bits.TrailingZeros64(m)/8
		if b[k] != '\t' {
			return k
		}
		i = k + 1
	}
	for ; i < len(b); i++ {
		if charClass[b[i]]&cValue == 0 {
			return i
		}
	}
	return i
}

// targetSpan returns the length of the longest prefix of b made of visible
// ASCII (the characters a request-target and a version may hold).
func targetSpan(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if suspectTargetWord(binary.LittleEndian.Uint64(b[i:])) {
			for k := i; k < i+8; k++ {
				if charClass[b[k]]&cTarget == 0 {
					return k
				}
			}
		}
	}
	for ; i < len(b); i++ {
		if charClass[b[i]]&cTarget == 0 {
			return i
		}
	}
	return i
}
