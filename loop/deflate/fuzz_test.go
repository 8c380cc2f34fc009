package deflate

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecompress: Decompress never panics, never returns more than limit
// bytes, and returns only its own errors, the same whether it copies the
// payload or reads it in place; data compressed by a Compressor comes back
// intact.
func FuzzDecompress(f *testing.F) {
	c := mustCompressor(f, DefaultLevel, 15)
	for _, msg := range append(corpus()[:4], []byte("Hello"), nil, sample(5000)) {
		p, _ := c.Compress(nil, msg)
		f.Add(p, uint16(len(msg)), uint8(15))
	}
	f.Add([]byte{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}, uint16(5), uint8(9))
	f.Add([]byte{0x06}, uint16(10), uint8(8))
	d := NewDecompressor()
	inPlace := NewDecompressor()
	inPlace.keep = 0
	var l Loop
	f.Fuzz(func(t *testing.T, data []byte, limit16 uint16, bits uint8) {
		limit := int(limit16)
		got, err := d.Decompress([]byte("ab"), data, limit)
		if len(got)-2 > limit || string(got[:2]) != "ab" {
			t.Fatalf("got %d bytes for a limit of %d; want at most the limit after the prefix", len(got)-2, limit)
		}
		if err != nil && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("got %v; want nil, ErrTooLarge or ErrCorrupt", err)
		}
		// Both paths accept or refuse the same payloads, and agree on what
		// they accept. How much of a refused payload each inflated before
		// it stopped may differ (the library reads ahead by different
		// amounts through the two readers), and so may the reason when a
		// payload is both corrupt and too large: the caller discards the
		// output and closes the connection either way.
		got2, err2 := inPlace.Decompress([]byte("ab"), data, limit)
		if (err2 == nil) != (err == nil) || err == nil && !bytes.Equal(got2, got) {
			t.Fatalf("in place: got %d bytes, %v; want %d bytes, %v as copied", len(got2), err2, len(got), err)
		}
		// The data as a message: compress it and inflate it back.
		bits = MinWindowBits + bits%(MaxWindowBits-MinWindowBits+1)
		c, err := l.Compressor(int(bits)%(MaxLevel+1), int(bits))
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Compress(nil, data)
		if err != nil {
			t.Fatal(err)
		}
		m, err := d.Decompress(nil, p, len(data))
		if err != nil || !bytes.Equal(m, data) {
			t.Fatalf("got %d bytes, %v back; want the %d bytes compressed", len(m), err, len(data))
		}
	})
}
