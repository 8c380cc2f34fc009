package deflate

import (
	"fmt"
	"runtime"
	"testing"
)

// benchLevels are the levels measured: the fastest and the default.
var benchLevels = []int{BestSpeed, DefaultLevel}

// BenchmarkCompress compresses the 16 JSON messages of about 2 KiB of
// corpus in turn, one per iteration, into a reused buffer. B/s counts the
// message's bytes; payload-B/msg is the mean compressed size.
func BenchmarkCompress(b *testing.B) {
	msgs := corpus()
	for _, level := range benchLevels {
		for _, bits := range []int{15, 10} {
			b.Run(fmt.Sprintf("level=%d/bits=%d", level, bits), func(b *testing.B) {
				c := mustCompressor(b, level, bits)
				var p []byte
				total, in := 0, 0
				for _, m := range msgs {
					p, _ = c.Compress(p[:0], m)
					total += len(p)
					in += len(m)
				}
				b.SetBytes(int64(in / len(msgs)))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					p, _ = c.Compress(p[:0], msgs[i%len(msgs)])
				}
				b.ReportMetric(float64(total)/float64(len(msgs)), "payload-B/msg")
			})
		}
	}
}

// BenchmarkDecompress inflates the compressed messages of corpus in turn,
// one per iteration, into a reused buffer. B/s counts the inflated bytes.
func BenchmarkDecompress(b *testing.B) {
	msgs := corpus()
	for _, level := range benchLevels {
		b.Run(fmt.Sprintf("level=%d", level), func(b *testing.B) {
			c := mustCompressor(b, level, 15)
			payloads := make([][]byte, len(msgs))
			in := 0
			for i, m := range msgs {
				payloads[i], _ = c.Compress(nil, m)
				in += len(m)
			}
			d := NewDecompressor()
			var m []byte
			b.SetBytes(int64(in / len(msgs)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				var err error
				m, err = d.Decompress(m[:0], payloads[i%len(payloads)], 1<<20)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFootprint reports the heap bytes that one Compressor or
// Decompressor holds once it has (de)compressed a 2 KiB message, measured
// with runtime.MemStats around creating 100 of them.
func BenchmarkFootprint(b *testing.B) {
	msg := corpus()[0]
	p, _ := mustCompressor(b, DefaultLevel, 15).Compress(nil, msg)
	measure := func(b *testing.B, newCodec func() any) {
		const n = 100
		keep := make([]any, n)
		var before, after runtime.MemStats
		for b.Loop() {
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range keep {
				keep[i] = newCodec()
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(keep)
			clear(keep)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/codec")
	}
	for _, level := range []int{BestSpeed, DefaultLevel, MaxLevel} {
		for _, bits := range []int{15, 8} {
			b.Run(fmt.Sprintf("compressor/level=%d/bits=%d", level, bits), func(b *testing.B) {
				measure(b, func() any {
					c := mustCompressor(b, level, bits)
					c.Compress(nil, msg)
					return c
				})
			})
		}
	}
	b.Run("decompressor", func(b *testing.B) {
		measure(b, func() any {
			d := NewDecompressor()
			d.Decompress(nil, p, 4<<10)
			return d
		})
	})
}
