// Command gws is the lxzan/gws peer of the benchmark: gws's own server
// (gws.NewServer(...).Run) with an echo event handler, as in its README.
// With -tls-cert and -tls-key it serves wss:// instead (RunTLS, TLS 1.3
// only).
package main

import (
	"crypto/tls"
	"flag"
	"log"

	"github.com/lxzan/gws"
)

type handler struct{ gws.BuiltinEventHandler }

func (handler) OnPing(c *gws.Conn, payload []byte) { _ = c.WritePong(payload) }

func (handler) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	_ = c.WriteMessage(m.Opcode, m.Bytes())
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9004", "listen address")
	cert := flag.String("tls-cert", "", "serve TLS with this certificate (PEM)")
	key := flag.String("tls-key", "", "the certificate's private key (PEM)")
	flag.Parse()
	if *cert != "" || *key != "" {
		opt := &gws.ServerOption{TlsConfig: &tls.Config{MinVersion: tls.VersionTLS13}}
		log.Fatal(gws.NewServer(handler{}, opt).RunTLS(*addr, *cert, *key))
	}
	log.Fatal(gws.NewServer(handler{}, nil).Run(*addr))
}
