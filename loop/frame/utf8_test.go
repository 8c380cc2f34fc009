package frame

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// utf8Cases are sequences in the style of the Autobahn test suite, group 6
// ("UTF-8 handling"). failAt is the index of the first byte after which no
// valid text can follow (where a fail-fast check must stop), or -1 if every
// prefix is fine: valid text, or text cut inside its last code point.
var utf8Cases = []struct {
	in     string
	valid  bool
	failAt int
}{
	// Valid.
	{"", true, -1},
	{"Hello-µ@ßöäüàá-UTF-8!!", true, -1},
	{"κόσμε", true, -1},
	{"\x00", true, -1},
	{"\u0080", true, -1},
	{"\u0800", true, -1},
	{"\U00010000", true, -1},
	{"\u007f", true, -1},
	{"\u07ff", true, -1},
	{"\uffff", true, -1},
	{"\U0010ffff", true, -1},
	{"\ud7ff", true, -1},       // just below the surrogates
	{"\ue000", true, -1},       // just above them
	{"\ufffd", true, -1},       // replacement character
	{"\xef\xbf\xbe", true, -1}, // U+FFFE: a noncharacter, still valid
	{"\xf4\x8f\xbf\xbf", true, -1},
	{strings.Repeat("ascii run ", 10) + "€" + strings.Repeat("x", 17) + "😀", true, -1},

	// Unexpected continuation bytes.
	{"\x80", false, 0},
	{"\xbf", false, 0},
	{"\x80\xbf", false, 0},
	{"ab\x80\xbf\x80", false, 2},
	// Lonely start characters followed by a space.
	{"\xc0 ", false, 0},
	{"\xdf ", false, 1},
	{"\xe0 ", false, 1},
	{"\xef ", false, 1},
	{"\xf0 ", false, 1},
	{"\xf7 ", false, 0},
	{"\xf8 ", false, 0},
	{"\xfc ", false, 0},
	// Sequences with the last continuation byte missing.
	{"\xc2", false, -1},
	{"\xe0\xa0", false, -1},
	{"\xef\xbf", false, -1},
	{"\xf0\x90\x80", false, -1},
	{"\xf4\x8f\xbf", false, -1},
	{"\xdf", false, -1},
	{"\xe1\x80", false, -1},
	{"κόσμε\xe2\x82", false, -1},
	// Impossible bytes.
	{"\xfe", false, 0},
	{"\xff", false, 0},
	{"\xfe\xfe\xff\xff", false, 0},
	// Overlong forms.
	{"\xc0\xaf", false, 0},
	{"\xe0\x80\xaf", false, 1},
	{"\xf0\x80\x80\xaf", false, 1},
	{"\xf8\x80\x80\x80\xaf", false, 0},
	{"\xfc\x80\x80\x80\x80\xaf", false, 0},
	{"\xc1\xbf", false, 0},
	{"\xe0\x9f\xbf", false, 1},
	{"\xf0\x8f\xbf\xbf", false, 1},
	{"\xc0\x80", false, 0},
	{"\xe0\x80\x80", false, 1},
	{"\xf0\x80\x80\x80", false, 1},
	// Single UTF-16 surrogates.
	{"\xed\xa0\x80", false, 1},
	{"\xed\xad\xbf", false, 1},
	{"\xed\xae\x80", false, 1},
	{"\xed\xaf\xbf", false, 1},
	{"\xed\xb0\x80", false, 1},
	{"\xed\xbe\x80", false, 1},
	{"\xed\xbf\xbf", false, 1},
	// Paired surrogates.
	{"\xed\xa0\x80\xed\xb0\x80", false, 1},
	{"\xed\xaf\xbf\xed\xbf\xbf", false, 1},
	// Above U+10FFFF.
	{"\xf4\x90\x80\x80", false, 1},
	{"\xf5\x80\x80\x80", false, 0},
	{"\xf7\xbf\xbf\xbf", false, 0},
	// 5- and 6-byte forms.
	{"\xf8\x88\x80\x80\x80", false, 0},
	{"\xfb\xbf\xbf\xbf\xbf", false, 0},
	{"\xfc\x84\x80\x80\x80\x80", false, 0},
	{"\xfd\xbf\xbf\xbf\xbf\xbf", false, 0},
	// Valid text with an invalid sequence inside (Autobahn 6.3.1).
	{"κόσμε\xed\xa0\x80edited", false, len("κόσμε") + 1},
	{strings.Repeat("a", 33) + "\xe2\x28\xa1", false, 34},
	{"\xe2\x82\xac\xe2\x82", false, -1},
	{"\xe2\x82\xac\xe2\x82\xe2", false, 5},
}

// TestUTF8Validator checks each case whole, against unicode/utf8, split in
// two at every offset and one byte at a time, and checks where a byte at a
// time validation fails.
func TestUTF8Validator(t *testing.T) {
	for i, tc := range utf8Cases {
		in := []byte(tc.in)
		if got := ValidUTF8(in); got != tc.valid {
			t.Errorf("#%d %q: got %v; want %v", i, tc.in, got, tc.valid)
		}
		if std := utf8.Valid(in); std != tc.valid {
			t.Errorf("#%d %q: got %v from unicode/utf8; want %v", i, tc.in, std, tc.valid)
		}
		for cut := 0; cut <= len(in); cut++ {
			var v UTF8Validator
			ok := v.Write(in[:cut]) && v.Write(in[cut:])
			if got := ok && v.Complete(); got != tc.valid {
				t.Errorf("#%d %q split at %d: got %v; want %v", i, tc.in, cut, got, tc.valid)
			}
			if ok != v.Valid() {
				t.Errorf("#%d %q split at %d: got Write %v and Valid %v; want them equal", i, tc.in, cut, ok, v.Valid())
			}
		}
		var v UTF8Validator
		failAt := -1
		for j := range in {
			if !v.Write(in[j : j+1]) {
				failAt = j
				break
			}
		}
		if failAt != tc.failAt {
			t.Errorf("#%d %q: got failure at byte %d; want %d", i, tc.in, failAt, tc.failAt)
		}
		if failAt >= 0 {
			// Sticky until Reset.
			if v.Write([]byte("a")) || v.Write(nil) || v.Valid() || v.Complete() {
				t.Errorf("#%d %q: got a validator that recovered; want it to stay invalid", i, tc.in)
			}
			v.Reset()
			if !v.Write([]byte("ok")) || !v.Complete() {
				t.Errorf("#%d %q: got a validator that is still invalid after Reset", i, tc.in)
			}
		}
	}
}

// TestUTF8Decoder runs the cases through the decoder the way the Autobahn
// suite does: as one text frame, and as a text message fragmented into one
// frame per byte.
func TestUTF8Decoder(t *testing.T) {
	for i, tc := range utf8Cases {
		want := outcome{events: []rec{msg(ws.OpText, tc.in)}, err: ErrNeedMore}
		if !tc.valid {
			want = outcome{err: ErrInvalidUTF8}
		}
		got, err := whole(Limits{}, mf(ws.OpText, true, tc.in))
		if err != nil {
			t.Fatal(err)
		}
		if !got.equal(want) {
			t.Errorf("#%d %q single frame: got %v; want %v", i, tc.in, got, want)
		}

		if len(tc.in) == 0 {
			continue
		}
		var frames [][]byte
		for j := range len(tc.in) {
			op := ws.OpContinuation
			if j == 0 {
				op = ws.OpText
			}
			frames = append(frames, mf(op, j == len(tc.in)-1, tc.in[j:j+1]))
		}
		got, err = whole(Limits{}, cat(frames...))
		if err != nil {
			t.Fatal(err)
		}
		// One None event per fragment before the failing one.
		nones := len(tc.in) - 1
		if tc.failAt >= 0 {
			nones = tc.failAt
		}
		var wantEvents []rec
		for j := range nones {
			op := ws.OpContinuation
			if j == 0 {
				op = ws.OpText
			}
			wantEvents = append(wantEvents, none(op))
		}
		if tc.valid {
			wantEvents = append(wantEvents, msg(ws.OpText, tc.in))
		}
		want.events = wantEvents
		if !got.equal(want) {
			t.Errorf("#%d %q one frame per byte: got %v; want %v", i, tc.in, got, want)
		}
	}
}

// TestUTF8Exhaustive compares the validator with unicode/utf8 on every
// sequence of up to three bytes, and on four-byte sequences built from the
// boundary values of each byte class, each also split at every offset.
func TestUTF8Exhaustive(t *testing.T) {
	check := func(p []byte) {
		want := utf8.Valid(p)
		if got := ValidUTF8(p); got != want {
			t.Fatalf("%x: got %v; want %v", p, got, want)
		}
		for cut := 1; cut < len(p); cut++ {
			var v UTF8Validator
			got := v.Write(p[:cut]) && v.Write(p[cut:]) && v.Complete()
			if got != want {
				t.Fatalf("%x split at %d: got %v; want %v", p, cut, got, want)
			}
		}
	}
	var b [4]byte
	for x := range 256 {
		b[0] = byte(x)
		check(b[:1])
		for y := range 256 {
			b[1] = byte(y)
			check(b[:2])
			for z := range 256 {
				b[2] = byte(z)
				check(b[:3])
			}
		}
	}
	edges := []byte{0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
		0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff}
	for _, w := range edges {
		for _, x := range edges {
			for _, y := range edges {
				for _, z := range edges {
					check([]byte{w, x, y, z})
					check([]byte{'a', w, x, y, z, 'b'})
				}
			}
		}
	}
}
