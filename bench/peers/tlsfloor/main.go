// Command tlsfloor is the floor of the benchmark's TLS scenarios: a
// crypto/tls server, one goroutine per connection, that completes the TLS
// handshake, reads a request head (found by scanning for the blank line),
// answers it with one canned 101 Switching Protocols without parsing it and
// without computing Sec-WebSocket-Accept (clients check only the status
// line), then echoes WebSocket frames minimally: every frame that fits its
// 1 KiB buffer comes back unmasked with its opcode; a close frame, a larger
// frame or an error ends the connection. It has no limits, no routing and
// no WebSocket validation: it is what Go's crypto/tls alone costs.
//
// It takes -tls-cert and -tls-key (required) and serves TLS 1.3 only.
package main

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"flag"
	"log"
	"net"
)

var response = []byte("HTTP/1.1 101 Switching Protocols\r\n" +
	"Upgrade: websocket\r\n" +
	"Connection: Upgrade\r\n" +
	"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")

var crlf2 = []byte("\r\n\r\n")

// bufSize bounds a request head and a frame.
const bufSize = 1 << 10

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, bufSize)
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += m
		if i := bytes.Index(buf[:n], crlf2); i >= 0 {
			n = copy(buf, buf[i+4:n])
			break
		}
		if n == len(buf) {
			return
		}
	}
	if _, err := c.Write(response); err != nil {
		return
	}
	for {
		hl, total, ok := frameLen(buf[:n])
		if !ok {
			if n == len(buf) {
				return
			}
			m, err := c.Read(buf[n:])
			if err != nil {
				return
			}
			n += m
			continue
		}
		if total > len(buf) {
			return
		}
		if n < total {
			m, err := c.Read(buf[n:])
			if err != nil {
				return
			}
			n += m
			continue
		}
		op := buf[0] & 0x0f
		if op == 0x8 {
			return
		}
		// unmask in place and write the frame back without its mask
		mask := buf[hl-4 : hl]
		payload := buf[hl:total]
		for i := range payload {
			payload[i] ^= mask[i&3]
		}
		buf[1] &^= 0x80
		copy(buf[hl-4:], payload)
		if _, err := c.Write(buf[:total-4]); err != nil {
			return
		}
		n = copy(buf, buf[total:n])
	}
}

// frameLen returns the header length (with the mask) and the total length
// of the masked client frame at the start of b, when its header is there.
func frameLen(b []byte) (hl, total int, ok bool) {
	if len(b) < 2 {
		return 0, 0, false
	}
	ln := int(b[1] & 0x7f)
	hl = 6
	switch ln {
	case 126:
		if len(b) < 4 {
			return 0, 0, false
		}
		hl, ln = 8, int(binary.BigEndian.Uint16(b[2:]))
	case 127:
		return 0, 1 << 30, true // never fits: ends the connection
	}
	return hl, hl + ln, true
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9005", "listen address")
	certFile := flag.String("tls-cert", "", "certificate (PEM)")
	keyFile := flag.String("tls-key", "", "the certificate's private key (PEM)")
	flag.Parse()
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := tls.Listen("tcp", *addr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Print(err)
			continue
		}
		go serve(c)
	}
}
