package puff

import (
	"bytes"
	"compress/flate"
	"testing"
)

// TestInflate: stored, fixed and dynamic blocks from compress/flate come
// back intact, with the longest distance of the data's repetition.
func TestInflate(t *testing.T) {
	for i, tc := range []struct {
		level int
		msg   []byte
		dist  int // longest back reference; -1: any
	}{
		{flate.NoCompression, []byte("stored"), 0},
		{flate.HuffmanOnly, bytes.Repeat([]byte("ab"), 100), 0},
		{flate.DefaultCompression, bytes.Repeat([]byte("abc"), 100), 3},
		{flate.BestCompression, append(bytes.Repeat([]byte("0123456789"), 10), make([]byte, 1000)...), -1},
	} {
		var b bytes.Buffer
		w, _ := flate.NewWriter(&b, tc.level)
		_, _ = w.Write(tc.msg)
		_ = w.Close()
		out, dist, err := Inflate(b.Bytes())
		if err != nil || !bytes.Equal(out, tc.msg) || tc.dist >= 0 && dist != tc.dist {
			t.Errorf("#%d: got %q, distance %d, %v; want %q, distance %d", i, out, dist, err, tc.msg, tc.dist)
		}
	}
}

// TestInflateCorrupt: a block of the reserved type fails.
func TestInflateCorrupt(t *testing.T) {
	for i, data := range [][]byte{{0x07}, {0xff, 0xff}} {
		if _, _, err := Inflate(data); err == nil {
			t.Errorf("#%d: Inflate(%x) succeeded; want an error", i, data)
		}
	}
}
