// Command gws is the lxzan/gws peer of the benchmark: gws's own server
// (gws.NewServer(...).Run) with an echo event handler, as in its README.
// With -tls-cert and -tls-key it serves wss:// instead (RunTLS, TLS 1.3
// only).
//
// With -deflate it negotiates permessage-deflate (PermessageDeflate
// Enabled, as the README shows; gws's defaults: level 1, messages under
// 512 bytes sent uncompressed), without context takeover; with
// -deflate-takeover too, it keeps its contexts when the client allows it
// (ServerContextTakeover and ClientContextTakeover, gws's default window
// of 2^12 bytes then).
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
	deflate := flag.Bool("deflate", false, "negotiate permessage-deflate (no context takeover)")
	takeover := flag.Bool("deflate-takeover", false, "with -deflate: keep the compression contexts (context takeover)")
	flag.Parse()
	opt := &gws.ServerOption{}
	if *deflate {
		opt.PermessageDeflate = gws.PermessageDeflate{
			Enabled:               true,
			ServerContextTakeover: *takeover,
			ClientContextTakeover: *takeover,
		}
	}
	if *cert != "" || *key != "" {
		opt.TlsConfig = &tls.Config{MinVersion: tls.VersionTLS13}
		log.Fatal(gws.NewServer(handler{}, opt).RunTLS(*addr, *cert, *key))
	}
	log.Fatal(gws.NewServer(handler{}, opt).Run(*addr))
}
