package subject

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscapeTopic(t *testing.T) {
	for name, want := range map[string]string{
		"news":        "news",
		"room.1":      "room.1",
		"room 1":      "room%201",
		"a*b":         "a%2Ab",
		"a>":          "a%3E",
		"100%":        "100%25",
		".x":          "%2Ex",
		"x.":          "x%2E",
		"a..b":        "a.%2Eb",
		"a...b":       "a.%2E.b",
		".":           "%2E",
		"..":          "%2E%2E",
		"tab\there":   "tab%09here",
		"ünïcödé":     "ünïcödé",
		"del\x7f":     "del%7F",
		"user:42/inb": "user:42/inb",
	} {
		got := EscapeTopic(name)
		if got != want {
			t.Errorf("EscapeTopic(%q) = %q, want %q", name, got, want)
		}
		back, ok := UnescapeTopic(got)
		if !ok || back != name {
			t.Errorf("UnescapeTopic(%q) = %q, %v; want %q", got, back, ok, name)
		}
		if !validSubjectTail(got) {
			t.Errorf("EscapeTopic(%q) = %q is not a literal subject tail", name, got)
		}
	}
	for _, bad := range []string{"", "%", "%2", "%zz", "a%2"} {
		if got, ok := UnescapeTopic(bad); ok {
			t.Errorf("UnescapeTopic(%q) = %q, accepted", bad, got)
		}
	}
}

// validSubjectTail reports whether s is made of non-empty tokens without
// whitespace or wildcards.
func validSubjectTail(s string) bool {
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" {
			return false
		}
		for i := 0; i < len(tok); i++ {
			if tok[i] <= ' ' || tok[i] == '*' || tok[i] == '>' || tok[i] == 0x7f {
				return false
			}
		}
	}
	return true
}

func FuzzEscapeTopic(f *testing.F) {
	for _, s := range []string{"news", "a..b", ". .", "%%", "a.b.", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		// The gateway takes topic names of up to 256 bytes; longer ones
		// only make each run slower.
		if name == "" || len(name) > 256 || !utf8.ValidString(name) {
			return
		}
		got := EscapeTopic(name)
		if !validSubjectTail(got) {
			t.Fatalf("EscapeTopic(%q) = %q is not a literal subject tail", name, got)
		}
		back, ok := UnescapeTopic(got)
		if !ok || back != name {
			t.Fatalf("round trip of %q: %q, %v", name, back, ok)
		}
	})
}

// BenchmarkEscapeTopic escapes topics of the gateway's largest size (256
// bytes): a name with nothing to escape, and one made of a long run of dots
// (every other one written %2E).
func BenchmarkEscapeTopic(b *testing.B) {
	for _, c := range []struct{ name, topic string }{
		{"plain", strings.Repeat("room-1.", 36) + "room"},
		{"dots", "x" + strings.Repeat(".", 254) + "x"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.topic)))
			for b.Loop() {
				EscapeTopic(c.topic)
			}
		})
	}
}
