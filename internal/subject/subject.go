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
// and a '.' that would make an empty token (first, last, or after another
// '.'). So topic "a b" is "a%20b" and ".x" is "%2Ex". Bytes of 0x80 and above
// (UTF-8) pass unchanged.
func EscapeTopic(name string) string {
	if !needsEscape(name) {
		return name
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(name) + 8)
	for i := 0; i < len(name); i++ {
		c := name[i]
		if escapeByte(name, i) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func needsEscape(name string) bool {
	for i := 0; i < len(name); i++ {
		if escapeByte(name, i) {
			return true
		}
	}
	return false
}

// escapeByte reports whether name[i] is written %XX.
func escapeByte(name string, i int) bool {
	c := name[i]
	switch {
	case c <= ' ' || c == 0x7f || c == '%' || c == '*' || c == '>':
		return true
	case c == '.':
		// An empty token would follow or precede: the first or last byte,
		// or a '.' right after a '.' that was kept as is.
		return i == 0 || i == len(name)-1 || name[i-1] == '.' && !escapeByte(name, i-1)
	}
	return false
}

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
