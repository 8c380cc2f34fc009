// Command gorilla is the gorilla/websocket peer of the benchmark: an echo
// server on net/http, one goroutine per connection, written the way the
// library's README and echo example recommend. With -tls-cert and -tls-key
// it serves wss:// instead (net/http's ListenAndServeTLS, TLS 1.3 only).
// With -deflate it negotiates permessage-deflate (Upgrader
// EnableCompression: gorilla supports no context takeover only, level 1).
package main

import (
	"crypto/tls"
	"flag"
	"log"
	"net/http"

	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{}

func echo(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			return
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "listen address")
	cert := flag.String("tls-cert", "", "serve TLS with this certificate (PEM)")
	key := flag.String("tls-key", "", "the certificate's private key (PEM)")
	deflate := flag.Bool("deflate", false, "negotiate permessage-deflate (no context takeover)")
	flag.Parse()
	upgrader.EnableCompression = *deflate
	http.HandleFunc("/", echo)
	if *cert != "" || *key != "" {
		srv := &http.Server{Addr: *addr, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS13}}
		log.Fatal(srv.ListenAndServeTLS(*cert, *key))
	}
	log.Fatal(http.ListenAndServe(*addr, nil))
}
