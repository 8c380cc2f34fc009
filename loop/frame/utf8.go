package frame

import "encoding/binary"

// UTF8Validator checks UTF-8 incrementally: a text message may arrive in
// pieces split anywhere, even inside a code point, and each piece is checked
// as it arrives (§5.6, §8.1). The state is one byte; the zero value is ready
// to use and expects the start of a text.
//
// Valid means the definition of the Unicode Standard (table 3-7, "well-formed
// UTF-8 byte sequences"), which is also the one of Go's utf8.Valid: no
// overlong forms, no surrogates (U+D800-U+DFFF), nothing above U+10FFFF, no
// 5- or 6-byte forms. An invalid byte is reported as soon as it is written,
// not at the end of its code point.
type UTF8Validator struct {
	state uint8
}

// Reset prepares v for a new text.
func (v *UTF8Validator) Reset() { v.state = sAccept }

// Valid reports whether the bytes written so far are a prefix of valid
// UTF-8. It may be true in the middle of a code point.
func (v *UTF8Validator) Valid() bool { return v.state != sReject }

// Complete reports whether the bytes written so far are valid UTF-8 ending
// on a code point boundary: the check to make at the end of a text.
func (v *UTF8Validator) Complete() bool { return v.state == sAccept }

// ValidUTF8 reports whether p is valid UTF-8 in full, with the rules of
// UTF8Validator.
func ValidUTF8(p []byte) bool {
	var v UTF8Validator
	return v.Write(p) && v.Complete()
}

// Byte classes of the validating automaton. The continuation bytes 80-BF
// are split in three because the byte after E0, ED, F0 and F4 has a narrower
// range than other continuation bytes (table 3-7).
const (
	cASCII = iota // 00-7F
	cCont1        // 80-8F
	cCont2        // 90-9F
	cCont3        // A0-BF
	cLead2        // C2-DF
	cE0           // E0: second byte A0-BF (no overlong 3-byte form)
	cLead3        // E1-EC, EE-EF
	cED           // ED: second byte 80-9F (no surrogates)
	cF0           // F0: second byte 90-BF (no overlong 4-byte form)
	cLead4        // F1-F3
	cF4           // F4: second byte 80-8F (nothing above U+10FFFF)
	cBad          // C0, C1 (overlong 2-byte forms), F5-FF
	numClasses
)

// States of the automaton, premultiplied by numClasses so that a transition
// is a single table load: next = utf8Next[state+class].
const (
	sAccept   = iota * numClasses // on a code point boundary
	sReject                       // an invalid byte was seen; final
	sNeed1                        // one continuation byte 80-BF missing
	sNeed2                        // two continuation bytes missing
	sNeed3                        // three continuation bytes missing
	sE0                           // after E0: A0-BF, then one more
	sED                           // after ED: 80-9F, then one more
	sF0                           // after F0: 90-BF, then two more
	sF4                           // after F4: 80-8F, then two more
	numStates = iota
)

// utf8Class maps a byte to its class. Read-only.
var utf8Class = func() (t [256]uint8) {
	for b := range 256 {
		var c uint8
		switch {
		case b <= 0x7f:
			c = cASCII
		case b <= 0x8f:
			c = cCont1
		case b <= 0x9f:
			c = cCont2
		case b <= 0xbf:
			c = cCont3
		case b <= 0xc1:
			c = cBad
		case b <= 0xdf:
			c = cLead2
		case b == 0xe0:
			c = cE0
		case b == 0xed:
			c = cED
		case b <= 0xef:
			c = cLead3
		case b == 0xf0:
			c = cF0
		case b <= 0xf3:
			c = cLead4
		case b == 0xf4:
			c = cF4
		default:
			c = cBad
		}
		t[b] = c
	}
	return t
}()

// utf8Next is the transition table, indexed by state+class. Read-only.
var utf8Next = func() (t [numStates * numClasses]uint8) {
	for i := range t {
		t[i] = sReject
	}
	set := func(from uint8, to uint8, classes ...uint8) {
		for _, c := range classes {
			t[int(from)+int(c)] = to
		}
	}
	set(sAccept, sAccept, cASCII)
	set(sAccept, sNeed1, cLead2)
	set(sAccept, sE0, cE0)
	set(sAccept, sNeed2, cLead3)
	set(sAccept, sED, cED)
	set(sAccept, sF0, cF0)
	set(sAccept, sNeed3, cLead4)
	set(sAccept, sF4, cF4)
	set(sNeed1, sAccept, cCont1, cCont2, cCont3)
	set(sNeed2, sNeed1, cCont1, cCont2, cCont3)
	set(sNeed3, sNeed2, cCont1, cCont2, cCont3)
	set(sE0, sNeed1, cCont3)
	set(sED, sNeed1, cCont1, cCont2)
	set(sF0, sNeed2, cCont2, cCont3)
	set(sF4, sNeed2, cCont1)
	return t
}()

// utf8Lead describes, for a byte that starts a multi-byte sequence, the
// sequence length (bits 0-7; 0 for a byte that cannot start one) and the
// allowed range of the second byte (low bound in bits 8-15, high bound in
// bits 16-23), which is narrower after E0, ED, F0 and F4. It drives the fast
// path, which checks whole sequences with a few comparisons instead of one
// table walk per byte; packing all of it in one word saves a dependent load.
// Read-only.
var utf8Lead = func() (t [256]uint32) {
	lead := func(size, lo, hi uint32) uint32 { return size | lo<<8 | hi<<16 }
	for b := 0xc2; b <= 0xf4; b++ {
		switch {
		case b <= 0xdf:
			t[b] = lead(2, 0x80, 0xbf)
		case b == 0xe0:
			t[b] = lead(3, 0xa0, 0xbf)
		case b == 0xed:
			t[b] = lead(3, 0x80, 0x9f)
		case b <= 0xef:
			t[b] = lead(3, 0x80, 0xbf)
		case b == 0xf0:
			t[b] = lead(4, 0x90, 0xbf)
		case b <= 0xf3:
			t[b] = lead(4, 0x80, 0xbf)
		default: // F4
			t[b] = lead(4, 0x80, 0x8f)
		}
	}
	return t
}()

const highBits = 0x8080808080808080

// Write checks p as the continuation of the bytes written before and reports
// whether everything written so far is still a prefix of valid UTF-8 (as
// Valid). Once it has returned false it always does, until Reset.
//
// ASCII is skipped 8 and 32 bytes at a time and whole multi-byte sequences
// are checked with a few comparisons; the automaton walks byte by byte only
// through a sequence cut by the start or the end of p. The loop advances p
// itself rather than an index, which lets the compiler drop most bounds
// checks.
func (v *UTF8Validator) Write(p []byte) bool {
	s := v.state
	if s != sAccept {
		if s == sReject {
			return false
		}
		// Finish the sequence begun by an earlier Write.
		for ; s != sAccept && len(p) > 0; p = p[1:] {
			s = utf8Next[int(s)+int(utf8Class[p[0]])]
			if s == sReject {
				v.state = sReject
				return false
			}
		}
		if s != sAccept {
			v.state = s // p ended inside the sequence
			return true
		}
	}
	p = p[:len(p):len(p)]
	for len(p) > 0 {
		c := p[0]
		if c < 0x80 {
			// Where there is one ASCII byte there are usually more: skip a
			// word, then blocks of four words. The > comparisons keep p
			// from being resliced to its very end, which would need a
			// fixup.
			p = p[1:]
			if len(p) > 8 && binary.LittleEndian.Uint64(p)&highBits == 0 {
				p = p[8:]
				for len(p) > 32 {
					w := binary.LittleEndian.Uint64(p) | binary.LittleEndian.Uint64(p[8:]) |
						binary.LittleEndian.Uint64(p[16:]) | binary.LittleEndian.Uint64(p[24:])
					if w&highBits != 0 {
						break
					}
					p = p[32:]
				}
			}
			continue
		}
		x := utf8Lead[c]
		size := int(x & 0xff)
		if size > len(p) {
			// A sequence cut by the end of p: the automaton checks the
			// bytes present below and keeps its state for the next Write.
			break
		}
		lo, hi := uint8(x>>8), uint8(x>>16)
		// Each case advances p by a constant rather than by size: the
		// branch is predicted, so the next iteration need not wait for
		// the table load.
		switch size {
		case 2:
			if p[1] < lo || p[1] > hi {
				v.state = sReject
				return false
			}
			p = p[2:]
		case 3:
			if p[1] < lo || p[1] > hi || p[2]&0xc0 != 0x80 {
				v.state = sReject
				return false
			}
			p = p[3:]
		case 4:
			if p[1] < lo || p[1] > hi || p[2]&0xc0 != 0x80 || p[3]&0xc0 != 0x80 {
				v.state = sReject
				return false
			}
			p = p[4:]
		default: // a byte that starts no sequence
			v.state = sReject
			return false
		}
	}
	// Only a sequence cut by the end of p is left, if anything.
	s = sAccept
	for _, c := range p {
		s = utf8Next[int(s)+int(utf8Class[c])]
		if s == sReject {
			v.state = sReject
			return false
		}
	}
	v.state = s
	return true
}
