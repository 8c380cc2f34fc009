package subject

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// escapeTopicRecursive is the first EscapeTopic, which decided each '.' by
// looking back over the dots before it (quadratic on a run of dots): the
// reference the linear one is compared with.
func escapeTopicRecursive(name string) string {
	if !needsEscapeRecursive(name) {
		return name
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(name) + 8)
	for i := 0; i < len(name); i++ {
		c := name[i]
		if escapeByteRecursive(name, i) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func needsEscapeRecursive(name string) bool {
	for i := 0; i < len(name); i++ {
		if escapeByteRecursive(name, i) {
			return true
		}
	}
	return false
}

// escapeByte reports whether name[i] is written %XX.
func escapeByteRecursive(name string, i int) bool {
	c := name[i]
	switch {
	case c <= ' ' || c == 0x7f || c == '%' || c == '*' || c == '>':
		return true
	case c == '.':
		// An empty token would follow or precede: the first or last byte,
		// or a '.' right after a '.' that was kept as is.
		return i == 0 || i == len(name)-1 || name[i-1] == '.' && !escapeByteRecursive(name, i-1)
	}
	return false
}

// TestEscapeTopicMatchesRecursive compares EscapeTopic with the reference
// on the table's names and on every name of up to 7 bytes over an alphabet
// of dots, a letter, an escaped byte and the two bytes of "ü".
func TestEscapeTopicMatchesRecursive(t *testing.T) {
	for i, c := range escapeTests {
		if got, want := EscapeTopic(c.name), escapeTopicRecursive(c.name); got != want {
			t.Errorf("#%d: EscapeTopic(%q) = %q; want %q", i, c.name, got, want)
		}
	}
	const alphabet = ".a%\xc3\xbc"
	buf := make([]byte, 0, 7)
	var walk func()
	walk = func() {
		name := string(buf)
		if got, want := EscapeTopic(name), escapeTopicRecursive(name); got != want {
			t.Fatalf("EscapeTopic(%q) = %q; want %q", name, got, want)
		}
		if len(buf) == cap(buf) {
			return
		}
		for j := 0; j < len(alphabet); j++ {
			buf = append(buf, alphabet[j])
			walk()
			buf = buf[:len(buf)-1]
		}
	}
	walk()
}

// TestEscapeTopicMatchesRecursiveLong compares EscapeTopic with the
// reference on random names of up to 300 bytes, mostly dots.
func TestEscapeTopicMatchesRecursiveLong(t *testing.T) {
	const alphabet = "....a %\xc3\xbc"
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 0, 300)
	for range 20000 {
		buf = buf[:0]
		for range r.IntN(cap(buf) + 1) {
			buf = append(buf, alphabet[r.IntN(len(alphabet))])
		}
		name := string(buf)
		if got, want := EscapeTopic(name), escapeTopicRecursive(name); got != want {
			t.Fatalf("EscapeTopic(%q) = %q; want %q", name, got, want)
		}
	}
}
