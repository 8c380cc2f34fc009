package testutil

import (
	"io"
	"net"
	"testing"
)

// EchoTCP starts a TCP server on 127.0.0.1 that echoes what each
// connection sends and, once the client's FIN has come, writes last(n)
// (n: the bytes it echoed; nothing when last is nil) and closes: a test
// sees a half-close go through both ways. The server stops at cleanup.
// It returns the server's address.
func EchoTCP(t testing.TB, last func(n int64) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				n, _ := io.Copy(nc, nc)
				if last != nil {
					_, _ = io.WriteString(nc, last(n))
				}
			}()
		}
	}()
	return ln.Addr().String()
}
