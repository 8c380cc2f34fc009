package subject

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// escapeTests are names and their escapes, the long ones of the gateway's
// largest topic size (256 bytes). The escapes were written by the first
// implementation, which decided each '.' by looking back over the dots
// before it (quadratic on a run of dots), and checked against the linear
// one on every short name and on random long ones: they pin its output.
var escapeTests = []struct{ name, want string }{
	{"", ""},
	{"news", "news"},
	{"room.1", "room.1"},
	{"room 1", "room%201"},
	{"a*b", "a%2Ab"},
	{"a>", "a%3E"},
	{"100%", "100%25"},
	{".x", "%2Ex"},
	{"x.", "x%2E"},
	{"a..b", "a.%2Eb"},
	{"a...b", "a.%2E.b"},
	{"a....b", "a.%2E.%2Eb"},
	{"a.....b", "a.%2E.%2E.b"},
	{".", "%2E"},
	{"..", "%2E%2E"},
	{"...", "%2E.%2E"},
	{"....", "%2E.%2E%2E"},
	{".....", "%2E.%2E.%2E"},
	{"......", "%2E.%2E.%2E%2E"},
	{".a.", "%2Ea%2E"},
	{"..a..", "%2E.a.%2E"},
	{"...a...", "%2E.%2Ea.%2E%2E"},
	{"a.b.c", "a.b.c"},
	{". .", "%2E%20%2E"},
	{" . ", "%20.%20"},
	{". . .", "%2E%20.%20%2E"},
	{"a. .b", "a.%20.b"},
	{"a .. b", "a%20.%2E%20b"},
	{"a.. .b", "a.%2E%20.b"},
	{"%..%", "%25.%2E%25"},
	{"*..*", "%2A.%2E%2A"},
	{">..>", "%3E.%2E%3E"},
	{".%.", "%2E%25%2E"},
	{".*.", "%2E%2A%2E"},
	{"..%2E..", "%2E.%252E.%2E"},
	{"%2E", "%252E"},
	{"%", "%25"},
	{"%%", "%25%25"},
	{"a%2", "a%252"},
	{"tab\there", "tab%09here"},
	{"\x00", "%00"},
	{"\x00.\x00", "%00.%00"},
	{"\r\n", "%0D%0A"},
	{"del\x7f", "del%7F"},
	{".\x7f.", "%2E%7F%2E"},
	{"ünïcödé", "ünïcödé"},
	{"ü.ü", "ü.ü"},
	{"ü..ü", "ü.%2Eü"},
	{"..ü..", "%2E.ü.%2E"},
	{"日本.語", "日本.語"},
	{"😀...😀", "😀.%2E.😀"},
	{"\xff..\xff", "\xff.%2E\xff"},
	{"\xc3.", "\xc3%2E"},
	{"user:42/inb", "user:42/inb"},
	{strings.Repeat(".", 256), "%2E" + strings.Repeat(".%2E", 127) + "%2E"},
	{strings.Repeat(".", 255), "%2E" + strings.Repeat(".%2E", 127)},
	{"x" + strings.Repeat(".", 254) + "x", "x" + strings.Repeat(".%2E", 127) + "x"},
	{"x" + strings.Repeat(".", 255), "x" + strings.Repeat(".%2E", 127) + "%2E"},
	{strings.Repeat("a.", 128), strings.Repeat("a.", 127) + "a%2E"},
	{strings.Repeat(".a", 128), "%2Ea" + strings.Repeat(".a", 127)},
	{strings.Repeat("..a", 85) + "b", "%2E.a" + strings.Repeat(".%2Ea", 84) + "b"},
	{strings.Repeat(". ", 128), "%2E%20" + strings.Repeat(".%20", 127)},
	{strings.Repeat(" ", 256), strings.Repeat("%20", 256)},
	{strings.Repeat("ü", 128), strings.Repeat("ü", 128)},
	{strings.Repeat("ü.", 128), strings.Repeat("ü.", 127) + "ü%2E"},
}

func TestEscapeTopic(t *testing.T) {
	for i, c := range escapeTests {
		got := EscapeTopic(c.name)
		if got != c.want {
			t.Errorf("#%d: EscapeTopic(%q) = %q; want %q", i, c.name, got, c.want)
		}
		if c.name == "" {
			continue // not a topic: nothing to decode
		}
		if back, ok := UnescapeTopic(got); !ok || back != c.name {
			t.Errorf("#%d: UnescapeTopic(%q) = %q, %v; want %q, true", i, got, back, ok, c.name)
		}
		if !validSubjectTail(got) {
			t.Errorf("#%d: EscapeTopic(%q) = %q is not a literal subject tail", i, c.name, got)
		}
	}
	for i, bad := range []string{"", "%", "%2", "%zz", "a%2", "%2g", "a.%"} {
		if got, ok := UnescapeTopic(bad); ok {
			t.Errorf("#%d: UnescapeTopic(%q) = %q, true; want a failure", i, bad, got)
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

// TestEscapeTopicAllocs: a name with nothing to escape is returned as it is,
// any other costs the result's one allocation.
func TestEscapeTopicAllocs(t *testing.T) {
	for i, c := range []struct {
		name string
		want float64
	}{
		{strings.Repeat("room-1.", 36) + "room", 0},
		{"x" + strings.Repeat(".", 254) + "x", 1},
		{strings.Repeat(" ", 256), 1},
	} {
		if got := testing.AllocsPerRun(100, func() { EscapeTopic(c.name) }); got != c.want {
			t.Errorf("#%d: EscapeTopic of %d bytes: got %v allocations; want %v", i, len(c.name), got, c.want)
		}
	}
}

// FuzzEscapeTopic checks that every topic name escapes to a literal subject
// tail that decodes back to the name.
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
