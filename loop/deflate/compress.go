package deflate

import (
	"github.com/klauspost/compress/flate"
)

// Compression levels accepted by NewCompressor, those of
// github.com/klauspost/compress/flate.
const (
	// MinLevel is Huffman coding only: no back references.
	MinLevel = flate.HuffmanOnly
	// DefaultLevel is the library's default, level 5.
	DefaultLevel = flate.DefaultCompression
	// BestSpeed is level 1.
	BestSpeed = flate.BestSpeed
	// MaxLevel is level 9.
	MaxLevel = flate.BestCompression
)

// Window sizes, as the bits of server_max_window_bits and
// client_max_window_bits (RFC 7692 §7.1.2): the LZ77 window is 2^bits bytes.
const (
	MinWindowBits = 8
	MaxWindowBits = 15
)

// syncTail is the LEN and NLEN of the empty stored block that a sync flush
// ends with; RFC 7692 §7.2.1 has the sender remove it.
const syncTail = "\x00\x00\xff\xff"

// appendWriter is the io.Writer a Compressor's flate.Writer writes to: it
// appends to b.
type appendWriter struct{ b []byte }

// Write appends p to w.b.
func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// Compressor compresses whole messages for permessage-deflate without
// context takeover: every message starts with an empty window. It is not
// safe for concurrent use.
//
// With 15 window bits the level selects one of the library's encoders. With
// fewer bits, levels 1..9 and DefaultLevel all use the library's single
// windowed encoder (flate.NewWriterWindow, comparable to level 5), whose
// back references never reach farther than 2^bits bytes; levels 0 and
// MinLevel make no back references at all and keep their own encoders.
type Compressor struct {
	w     *flate.Writer
	out   appendWriter
	level int
	bits  int
}

// NewCompressor returns a Compressor for level (MinLevel..MaxLevel, or
// DefaultLevel) and windowBits (MinWindowBits..MaxWindowBits). It returns
// ErrLevel or ErrWindowBits for values out of range.
func NewCompressor(level, windowBits int) (*Compressor, error) {
	if err := checkArgs(level, windowBits); err != nil {
		return nil, err
	}
	c := &Compressor{level: level, bits: windowBits}
	var err error
	if windowBits == MaxWindowBits || level == flate.NoCompression || level == flate.HuffmanOnly {
		c.w, err = flate.NewWriter(&c.out, level)
	} else {
		// 2^8 = 256 bytes is above flate.MinCustomWindowSize (32), and the
		// encoder rejects any match whose distance exceeds the window.
		c.w, err = flate.NewWriterWindow(&c.out, 1<<windowBits)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Level returns the compression level c was created with.
func (c *Compressor) Level() int { return c.level }

// WindowBits returns the window bits c was created with.
func (c *Compressor) WindowBits() int { return c.bits }

// Compress appends to dst the payload of one compressed message holding msg
// (RFC 7692 §7.2.1): msg deflated from an empty window, sync-flushed, with
// the trailing 00 00 ff ff removed. An empty msg gives the single byte 00.
// It allocates only to grow dst; the first calls also let the library
// allocate its buffers, which c keeps.
func (c *Compressor) Compress(dst, msg []byte) ([]byte, error) {
	c.out.b = dst
	c.w.Reset(&c.out)
	_, err := c.w.Write(msg)
	if err == nil {
		err = c.w.Flush()
	}
	out := c.out.b
	c.out.b = nil
	if err != nil {
		return dst, err
	}
	// A sync flush always ends with the empty stored block's LEN and NLEN.
	if len(out) < len(dst)+len(syncTail) || string(out[len(out)-len(syncTail):]) != syncTail {
		return dst, errNoSyncTail
	}
	return out[:len(out)-len(syncTail)], nil
}
