package frame

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

var benchSizes = []int{16, 128, 4 << 10, 64 << 10}

// benchText returns n bytes of ASCII, or of mostly 2- and 3-byte UTF-8.
func benchText(n int, multibyte bool) []byte {
	unit := "The quick brown fox jumps over the lazy dog. "
	if multibyte {
		unit = "Съешь же ещё этих мягких булок, 日本語のテキスト, ça va? "
	}
	s := []byte(strings.Repeat(unit, n/len(unit)+2))
	// Cut on a code point boundary at or below n.
	s = s[:n]
	for !utf8.Valid(s) {
		s = s[:len(s)-1]
	}
	for len(s) < n {
		s = append(s, 'x')
	}
	return s
}

// BenchmarkDecode decodes one masked frame per iteration: unmasking, UTF-8
// checking for text, and the event. Each iteration first copies the masked
// frame into the buffer (decoding unmasks in place); that copy is included.
func BenchmarkDecode(b *testing.B) {
	for _, kind := range []string{"text", "text-multibyte", "binary"} {
		for _, n := range benchSizes {
			b.Run(kind+"/"+strconv.Itoa(n), func(b *testing.B) {
				op := ws.OpText
				payload := benchText(n, kind == "text-multibyte")
				if kind == "binary" {
					op = ws.OpBinary
					for i := range payload {
						payload[i] = byte(i * 31)
					}
				}
				frame := build(spec{fin: true, op: op, payload: payload})
				buf := make([]byte, len(frame))
				var d Decoder
				d.Init(Limits{})
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					copy(buf, frame)
					ev, _, err := d.Next(buf)
					if err != nil || len(ev.Payload) != n {
						b.Fatalf("got %v, %d bytes", err, len(ev.Payload))
					}
				}
			})
		}
	}
}

// BenchmarkDecodeFragmented decodes a 4 KiB text message sent as four
// fragments with a ping among them.
func BenchmarkDecodeFragmented(b *testing.B) {
	p := benchText(4<<10, false)
	stream := cat(mf(ws.OpText, false, string(p[:1024])), mf(ws.OpPing, true, "p"),
		mf(ws.OpContinuation, false, string(p[1024:2048])), mf(ws.OpContinuation, false, string(p[2048:3072])),
		mf(ws.OpContinuation, true, string(p[3072:])))
	buf := make([]byte, len(stream))
	var d Decoder
	d.Init(Limits{})
	defer d.Release()
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, stream)
		in := buf
		for len(in) > 0 {
			_, n, err := d.Next(in)
			if err != nil {
				b.Fatal(err)
			}
			in = in[n:]
		}
	}
}

// BenchmarkUTF8 measures the validator, with unicode/utf8.Valid alongside
// for reference.
func BenchmarkUTF8(b *testing.B) {
	for _, kind := range []string{"ascii", "multibyte"} {
		for _, n := range []int{128, 4 << 10, 64 << 10} {
			p := benchText(n, kind == "multibyte")
			b.Run(kind+"/"+strconv.Itoa(n), func(b *testing.B) {
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					var v UTF8Validator
					if !v.Write(p) || !v.Complete() {
						b.Fatal("invalid")
					}
				}
			})
			b.Run(kind+"/"+strconv.Itoa(n)+"/stdlib", func(b *testing.B) {
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if !utf8.Valid(p) {
						b.Fatal("invalid")
					}
				}
			})
		}
	}
}

// BenchmarkEncode appends an unmasked frame into a reused buffer.
func BenchmarkEncode(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			payload := benchText(n, false)
			dst := make([]byte, 0, n+MaxServerHeaderLen)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				dst = AppendFrame(dst[:0], ws.OpText, true, payload)
			}
		})
	}
	b.Run("close", func(b *testing.B) {
		dst := make([]byte, 0, 128)
		b.ReportAllocs()
		for b.Loop() {
			dst = AppendClose(dst[:0], ws.StatusNormalClosure, "bye")
		}
	})
}
