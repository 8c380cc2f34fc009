package deflate

import (
	"bytes"
	stdflate "compress/flate"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/upgate/upgate/internal/puff"
)

var sizes = []int{0, 1, 125, 2 << 10, 64 << 10, 1 << 20}

// TestRoundTrip: every size, window and several levels come back intact,
// and the payload never ends with the removed 00 00 ff ff.
func TestRoundTrip(t *testing.T) {
	d := NewDecompressor()
	msgs := append([][]byte{}, corpus()[0])
	for _, n := range sizes {
		msgs = append(msgs, sample(n))
	}
	i := 0
	for _, level := range []int{MinLevel, 0, BestSpeed, DefaultLevel, 6, MaxLevel} {
		for bits := MinWindowBits; bits <= MaxWindowBits; bits++ {
			c := mustCompressor(t, level, bits)
			for _, msg := range msgs {
				i++
				payload, err := c.Compress(nil, msg)
				if err != nil {
					t.Fatalf("#%d: level %d, %d bits, %d bytes: Compress: %v", i, level, bits, len(msg), err)
				}
				if bytes.HasSuffix(payload, []byte(syncTail)) && len(msg) > 0 {
					t.Errorf("#%d: got a payload ending with 00 00 ff ff; want it removed", i)
				}
				got, err := d.Decompress(nil, payload, len(msg))
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("#%d: level %d, %d bits, %d bytes: got %d bytes, %v; want the message", i, level, bits, len(msg), len(got), err)
				}
			}
		}
	}
}

// TestAppend: Compress and Decompress append to dst and leave its bytes.
func TestAppend(t *testing.T) {
	c := mustCompressor(t, DefaultLevel, 15)
	d := NewDecompressor()
	msg := corpus()[1]
	prefix := []byte("prefix")
	p, err := c.Compress(append([]byte{}, prefix...), msg)
	if err != nil || !bytes.HasPrefix(p, prefix) {
		t.Fatalf("got %q, %v; want the payload after the prefix", p, err)
	}
	m, err := d.Decompress(append([]byte{}, prefix...), p[len(prefix):], len(msg))
	if err != nil || !bytes.Equal(m, append(prefix, msg...)) {
		t.Fatalf("got %d bytes, %v; want prefix and message", len(m), err)
	}
}

// TestRFC7692Examples: the payloads of RFC 7692 §7.2.3.
func TestRFC7692Examples(t *testing.T) {
	hello := []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}
	stored := []byte{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}
	// Levels 7..9 give the fixed-Huffman bytes of §7.2.3.1; the others store
	// a block this short, as in §7.2.3.3.
	for i, tc := range []struct {
		level, bits int
		want        []byte
	}{
		{MaxLevel, 15, hello}, {7, 15, hello}, {DefaultLevel, 15, stored}, {BestSpeed, 15, stored}, {MaxLevel, 8, stored},
	} {
		got, err := mustCompressor(t, tc.level, tc.bits).Compress(nil, []byte("Hello"))
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("#%d: level %d, %d bits: got % x, %v; want % x", i, tc.level, tc.bits, got, err, tc.want)
		}
	}
	d := NewDecompressor()
	for i, tc := range []struct {
		payload []byte
		want    string
	}{
		// §7.2.3.1: "Hello" compressed, fixed Huffman.
		{hello, "Hello"},
		// §7.2.3.1: the same, sent in two fragments, decoded as one.
		{append([]byte{0xf2, 0x48, 0xcd}, 0xc9, 0xc9, 0x07, 0x00), "Hello"},
		// §7.2.3.3: a stored block (no compression).
		{[]byte{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}, "Hello"},
		// §7.2.3.4: a final block, then one byte of an empty stored block's
		// header.
		{[]byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}, "Hello"},
		// §7.2.3.5: two DEFLATE blocks in one message.
		{[]byte{0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00}, "Hello"},
		// §7.2.3.6: an empty message.
		{[]byte{0x00}, ""},
	} {
		got, err := d.Decompress(nil, tc.payload, 100)
		if err != nil || string(got) != tc.want {
			t.Errorf("#%d: got %q, %v; want %q", i, got, err, tc.want)
		}
	}
}

// TestInteropStdlib: compress/flate reads our payloads, and we read its.
func TestInteropStdlib(t *testing.T) {
	d := NewDecompressor()
	i := 0
	for _, n := range sizes {
		msg := sample(n)
		for _, level := range []int{BestSpeed, DefaultLevel, MaxLevel} {
			i++
			// Ours, read by the standard library.
			c := mustCompressor(t, level, 15)
			p, err := c.Compress(nil, msg)
			if err != nil {
				t.Fatal(err)
			}
			r := stdflate.NewReader(io.MultiReader(bytes.NewReader(p), strings.NewReader(tail)))
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, msg) {
				t.Errorf("#%d: compress/flate read %d bytes, %v; want %d", i, len(got), err, len(msg))
			}
			// The standard library's, read by us.
			var b bytes.Buffer
			w, _ := stdflate.NewWriter(&b, level)
			w.Write(msg)
			w.Flush()
			sp := bytes.TrimSuffix(b.Bytes(), []byte(syncTail))
			got, err = d.Decompress(nil, sp, len(msg))
			if err != nil || !bytes.Equal(got, msg) {
				t.Errorf("#%d: read %d bytes of compress/flate's, %v; want %d", i, len(got), err, len(msg))
			}
			// A standard library stream closed with a final block.
			b.Reset()
			w.Reset(&b)
			w.Write(msg)
			w.Close()
			got, err = d.Decompress(nil, b.Bytes(), len(msg))
			if err != nil || !bytes.Equal(got, msg) {
				t.Errorf("#%d: read %d bytes of a closed stream, %v; want %d", i, len(got), err, len(msg))
			}
		}
	}
}

// TestWindow: with fewer than 15 window bits, no back reference reaches
// farther than 2^bits bytes, and the output still compresses.
func TestWindow(t *testing.T) {
	msg := sample(256 << 10)
	for i, bits := 0, MinWindowBits; bits <= MaxWindowBits; i, bits = i+1, bits+1 {
		for _, level := range []int{BestSpeed, DefaultLevel, MaxLevel} {
			c := mustCompressor(t, level, bits)
			p, err := c.Compress(nil, msg)
			if err != nil {
				t.Fatal(err)
			}
			out, dist, err := puff.Inflate(append(p, syncTail...))
			if err != nil || !bytes.Equal(out, msg) {
				t.Fatalf("#%d: level %d: got %d bytes, %v; want the message", i, level, len(out), err)
			}
			if dist > 1<<bits {
				t.Errorf("#%d: level %d: got a distance of %d; want at most %d", i, level, dist, 1<<bits)
			}
			if len(p) >= len(msg) {
				t.Errorf("#%d: level %d: got %d bytes from %d; want less", i, level, len(p), len(msg))
			}
		}
	}
}

// TestBomb: a little compressed data that would inflate to many MB stops
// at the limit with ErrTooLarge, and the output never passes it.
func TestBomb(t *testing.T) {
	c := mustCompressor(t, MaxLevel, 15)
	bomb, err := c.Compress(nil, make([]byte, 16<<20))
	if err != nil {
		t.Fatal(err)
	}
	if len(bomb) > 128<<10 {
		t.Fatalf("got a bomb of %d bytes; want a small one", len(bomb))
	}
	d := NewDecompressor()
	for i, limit := range []int{-1, 0, 1, 1000, 64 << 10, 1 << 20, 16<<20 - 1} {
		dst := make([]byte, 3, 16)
		got, err := d.Decompress(dst, bomb, limit)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("#%d: limit %d: got %v; want ErrTooLarge", i, limit, err)
		}
		if want := 3 + max(limit, 0); len(got) != want {
			t.Errorf("#%d: limit %d: got %d bytes; want %d", i, limit, len(got), want)
		}
		if cap(got) > 2*(3+max(limit, 0))+minGrow+64 {
			t.Errorf("#%d: limit %d: got a capacity of %d; want about the limit", i, limit, cap(got))
		}
	}
	// At exactly its size, the message passes.
	got, err := d.Decompress(nil, bomb, 16<<20)
	if err != nil || len(got) != 16<<20 {
		t.Errorf("got %d bytes, %v; want %d", len(got), err, 16<<20)
	}
}

// TestCorrupt: data that is not DEFLATE returns ErrCorrupt, and the
// Decompressor works again for the next message, whether it copies the
// payload or reads it in place.
func TestCorrupt(t *testing.T) {
	c := mustCompressor(t, DefaultLevel, 15)
	good, _ := c.Compress(nil, corpus()[2])
	for _, d := range bothDecompressors() {
		for i, payload := range [][]byte{
			{0x06},                         // BTYPE 11, reserved
			{0x00, 0x05, 0x00, 0x00, 0x00}, // stored block, NLEN not ~LEN
			{0x00, 0x05, 0x00, 0xfa, 0xff}, // stored block without its data
			{0xf2, 0x48},                   // Huffman block cut short
			{0x02, 0x82, 0x00},             // a back reference before the start
			good[:len(good)/2],             // half a message
			append(append([]byte{}, good...), syncTail...), // tail left in
			bytes.Repeat([]byte{0xff}, 64),
		} {
			got, err := d.Decompress(nil, payload, 1<<20)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("keep %d: #%d: % x: got %d bytes, %v; want ErrCorrupt", d.keep, i, payload, len(got), err)
			}
		}
		if m, err := d.Decompress(nil, good, 1<<20); err != nil || !bytes.Equal(m, corpus()[2]) {
			t.Errorf("keep %d: got %d bytes, %v after corrupt data; want the message", d.keep, len(m), err)
		}
	}
}

// TestAfterFinal: bytes after a final block are ignored.
func TestAfterFinal(t *testing.T) {
	p := []byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xde, 0xad}
	for _, d := range bothDecompressors() {
		if m, err := d.Decompress(nil, p, 5); err != nil || string(m) != "Hello" {
			t.Errorf("keep %d: got %q, %v; want Hello", d.keep, m, err)
		}
	}
}

// TestInPlace: a payload too large for the input buffer is read in place
// and inflates the same, the buffer never grows past copyKeep, and the
// Decompressor copies small payloads again afterwards.
func TestInPlace(t *testing.T) {
	c := mustCompressor(t, BestSpeed, 15)
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, copyKeep+copyKeep/4)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	bigP, _ := c.Compress(nil, big)
	if len(bigP) <= copyKeep {
		t.Fatalf("got a payload of %d bytes; want more than %d", len(bigP), copyKeep)
	}
	d := NewDecompressor()
	for i, msg := range [][]byte{corpus()[0], big, corpus()[1], sample(copyKeep - 64), big} {
		p, _ := c.Compress(nil, msg)
		m, err := d.Decompress(nil, p, len(msg))
		if err != nil || !bytes.Equal(m, msg) {
			t.Errorf("#%d: got %d bytes, %v; want the %d bytes compressed", i, len(m), err, len(msg))
		}
		if m, err := d.Decompress(nil, p, len(msg)-1); !errors.Is(err, ErrTooLarge) || len(m) != len(msg)-1 {
			t.Errorf("#%d: limit one short: got %d bytes, %v; want ErrTooLarge", i, len(m), err)
		}
		if cap(d.buf) > copyKeep {
			t.Errorf("#%d: got an input buffer of %d bytes; want at most %d", i, cap(d.buf), copyKeep)
		}
	}
	// Every payload of the corpus, read in place.
	d.keep = 0
	for i, msg := range corpus() {
		p, _ := c.Compress(nil, msg)
		if m, err := d.Decompress(nil, p, len(msg)); err != nil || !bytes.Equal(m, msg) {
			t.Errorf("in place: #%d: got %d bytes, %v; want the message", i, len(m), err)
		}
	}
}

// bothDecompressors returns a Decompressor that copies payloads and one
// that reads them in place.
func bothDecompressors() []*Decompressor {
	inPlace := NewDecompressor()
	inPlace.keep = 0
	return []*Decompressor{NewDecompressor(), inPlace}
}

// TestBadArgs: levels and window bits out of range are refused.
func TestBadArgs(t *testing.T) {
	var l Loop
	var p Pool
	for i, tc := range []struct {
		level, bits int
		want        error
	}{
		{-3, 15, ErrLevel}, {10, 15, ErrLevel}, {1, 7, ErrWindowBits}, {1, 16, ErrWindowBits}, {1, 0, ErrWindowBits},
	} {
		_, err1 := NewCompressor(tc.level, tc.bits)
		_, err2 := l.Compressor(tc.level, tc.bits)
		_, err3 := p.Get(tc.level, tc.bits)
		for _, err := range []error{err1, err2, err3} {
			if err != tc.want {
				t.Errorf("#%d: level %d, %d bits: got %v; want %v", i, tc.level, tc.bits, err, tc.want)
			}
		}
	}
}

// TestPools: a Loop keeps one codec per kind; a Pool hands out Compressors
// of the level and window asked for.
func TestPools(t *testing.T) {
	var l Loop
	if l.Decompressor() != l.Decompressor() {
		t.Error("got two Decompressors from one Loop; want one")
	}
	a, _ := l.Compressor(1, 15)
	b, _ := l.Compressor(1, 15)
	c, _ := l.Compressor(1, 10)
	if a != b || a == c {
		t.Error("got Compressors not kept per (level, window bits)")
	}
	var p Pool
	for i, bits := range []int{8, 12, 15} {
		c, err := p.Get(DefaultLevel, bits)
		if err != nil || c.Level() != DefaultLevel || c.WindowBits() != bits {
			t.Fatalf("#%d: got %v; want a Compressor for %d bits", i, err, bits)
		}
		p.Put(c)
	}
	p.Put(nil)
}

// ExampleCompressor compresses and inflates one message.
func ExampleCompressor() {
	c, _ := NewCompressor(BestSpeed, 15)
	d := NewDecompressor()
	payload, _ := c.Compress(nil, []byte("Hello"))
	msg, err := d.Decompress(nil, payload, 1<<20)
	fmt.Println(string(msg), err)
	// Output: Hello <nil>
}
