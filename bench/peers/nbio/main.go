// Command nbio is the lesismal/nbio peer of the benchmark: nbhttp's engine
// in non-blocking mode (connections served by nbio's pollers, no goroutine
// per connection) with its websocket upgrader echoing every message.
//
// With -tls-cert and -tls-key it serves wss:// instead, the way nbio's TLS
// examples do: AddrsTLS with a TLSConfig of nbio's own crypto/tls fork
// (github.com/lesismal/llib/std/crypto/tls, which works on non-blocking
// connections), TLS 1.3 only. The fork predates the hybrid post-quantum
// key exchange: it offers X25519, P-256, P-384 and P-521 only.
//
// With -deflate it negotiates permessage-deflate (Upgrader
// EnableCompression; nbio supports no context takeover only, level 1 by
// default).
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/lesismal/llib/std/crypto/tls"
	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9003", "listen address")
	certFile := flag.String("tls-cert", "", "serve TLS with this certificate (PEM)")
	keyFile := flag.String("tls-key", "", "the certificate's private key (PEM)")
	deflate := flag.Bool("deflate", false, "negotiate permessage-deflate (no context takeover)")
	flag.Parse()
	logging.SetLevel(logging.LevelError)

	upgrader := websocket.NewUpgrader()
	upgrader.EnableCompression(*deflate)
	upgrader.OnMessage(func(c *websocket.Conn, mt websocket.MessageType, data []byte) {
		_ = c.WriteMessage(mt, data)
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = upgrader.Upgrade(w, r, nil)
	})
	conf := nbhttp.Config{
		Network:                 "tcp",
		Addrs:                   []string{*addr},
		IOMod:                   nbhttp.IOModNonBlocking,
		ReleaseWebsocketPayload: true,
		Handler:                 mux,
	}
	if *certFile != "" || *keyFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatal(err)
		}
		conf.Addrs = nil
		conf.AddrsTLS = []string{*addr}
		conf.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	}
	engine := nbhttp.NewEngine(conf)
	if err := engine.Start(); err != nil {
		log.Fatal(err)
	}
	select {}
}
