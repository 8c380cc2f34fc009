package tlsrec

import (
	"crypto/tls"
	"strconv"
	"testing"
)

// BenchmarkEncrypt protects one message per iteration (AES-128-GCM, what
// crypto/tls picks with AES hardware).
func BenchmarkEncrypt(b *testing.B) {
	for _, size := range []int{128, 4 << 10, 64 << 10} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			srv, _ := pair(b, tls.TLS_AES_128_GCM_SHA256)
			srv.UpdateAfter = 1 << 62
			msg := make([]byte, size)
			buf := make([]byte, 0, size+8*Overhead)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = srv.Encrypt(buf[:0], msg)
			}
		})
	}
}

// BenchmarkDecrypt opens one message per iteration.
func BenchmarkDecrypt(b *testing.B) {
	for _, size := range []int{128, 4 << 10, 64 << 10} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			srv, cli := pair(b, tls.TLS_AES_128_GCM_SHA256)
			wire, _ := cli.Encrypt(nil, make([]byte, size))
			plain := make([]byte, 0, len(wire))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				srv.In.SetSeq(0)
				_, plain, _ = srv.Decrypt(plain[:0], wire)
			}
		})
	}
}
