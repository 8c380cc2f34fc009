// Package subject writes topic names as NATS subject tokens and reads them
// back: the topic escaping of package bus's wire contract (bus.EscapeTopic,
// bus.UnescapeTopic). It imports nothing but the standard library, so that it
// builds, tests and fuzzes without the NATS client and server bus links.
package subject

import "strings"

// EscapeTopic turns a topic name into subject tokens. Most names are used as
// they are, '.' included (topic "room.1" is subject tail "room.1"). Bytes a
// subject may not hold, or that NATS reads as wildcards, are written %XX (two
// upper-case hex digits): control characters, space, DEL, '%', '*' and '>',
// and a '.' that would make an empty token: the first or last byte, or a '.'
// right after a '.' kept as is. So topic "a b" is "a%20b", ".x" is "%2Ex" and
// "a...b" is "a.%2E.b". Bytes of 0x80 and above (UTF-8) pass unchanged.
//
// It takes time linear in len(name) and allocates only the result, once,
// when there is something to escape.
func EscapeTopic(name string) string {
	n := escapedLen(name)
	if n == len(name) {
		return name
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(n)
	kept := 0    // name[kept:i] is yet to be written as is
	dot := false // name[i-1] is a '.' kept as is
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !escapes(c, i, len(name), dot) {
			dot = c == '.'
			continue
		}
		dot = false
		b.WriteString(name[kept:i])
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
		kept = i + 1
	}
	b.WriteString(name[kept:])
	return b.String()
}

// escapedLen returns the length of EscapeTopic(name).
func escapedLen(name string) int {
	n := len(name)
	dot := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !escapes(c, i, len(name), dot) {
			dot = c == '.'
			continue
		}
		dot = false
		n += 2
	}
	return n
}

// escapes reports whether c, byte i of a name of n bytes, is written %XX;
// dot tells whether the byte before it is a '.' kept as is. Of a run of dots
// inside a name the first is kept, the second escaped, the third kept, and
// so on: no two kept dots are adjacent, so no token is empty.
func escapes(c byte, i, n int, dot bool) bool {
	switch byteClass[c] {
	case classEscaped:
		return true
	case classDot:
		return i == 0 || i == n-1 || dot
	}
	return false
}

// Classes of bytes in byteClass.
const (
	classKept    = iota // written as is
	classEscaped        // always written %XX
	classDot            // '.': written %XX where it would make an empty token
)

// byteClass is the class of every byte: control characters, space, DEL, '%',
// '*' and '>' are always escaped, bytes of 0x80 and above are kept.
var byteClass = func() (t [256]uint8) {
	for c := 0; c <= ' '; c++ {
		t[c] = classEscaped
	}
	for _, c := range []byte{0x7f, '%', '*', '>'} {
		t[c] = classEscaped
	}
	t['.'] = classDot
	return t
}()

// UnescapeTopic reverses EscapeTopic. It accepts any subject tail: %XX is
// decoded wherever it appears, other bytes are taken as they are. It fails on
// a '%' not followed by two hex digits and on an empty result.
func UnescapeTopic(tail string) (string, bool) {
	if strings.IndexByte(tail, '%') < 0 {
		return tail, tail != ""
	}
	b := make([]byte, 0, len(tail))
	for i := 0; i < len(tail); i++ {
		c := tail[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(tail) {
			return "", false
		}
		hi, ok1 := unhex(tail[i+1])
		lo, ok2 := unhex(tail[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), len(b) > 0
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
