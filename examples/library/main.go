// Command library embeds upgate in a Go program: a Handler of its own on
// /shout, the built-in pubsub behaviour on /news/{topic}, upgate's admin API
// in the program's own HTTP server, and a graceful shutdown.
package main

import (
	"bytes"
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/upgate/upgate/gateway"
)

// shout answers every message in capitals.
type shout struct{}

func (shout) OnOpen(c gateway.Conn, r *gateway.Request) {}

func (shout) OnMessage(c gateway.Conn, op gateway.OpCode, msg []byte) {
	_ = c.Write(op, bytes.ToUpper(msg)) // Write in a callback, Send from other goroutines
}

func (shout) OnClose(c gateway.Conn, code gateway.StatusCode, err error) {}

// config serves WebSocket clients on listen.
func config(listen string) gateway.Config {
	return gateway.Config{
		Listen: listen,
		Admin:  "off", // served by the program's own HTTP server instead
		Routes: []gateway.Route{
			{Path: "/shout", Behaviour: gateway.Custom, Handler: shout{}},
			{Path: "/news/{topic}", Behaviour: gateway.PubSub},
		},
	}
}

// routes is the program's own HTTP API, with upgate's under /admin/.
func routes(g *gateway.Gateway) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", g.AdminHandler()))
	return mux
}

func main() {
	g, err := gateway.New(config(":8080"))
	if err != nil {
		log.Fatal(err)
	}
	if err := g.Start(); err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:9090")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: routes(g), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	<-ctx.Done()
	stop()
	if err := shutdown(g, srv, 15*time.Second); err != nil {
		log.Fatal(err)
	}
}

// shutdown drains the gateway (every client gets a close frame with 1001
// and time to answer it), then stops the HTTP server.
func shutdown(g *gateway.Gateway, srv *http.Server, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	return errors.Join(g.Shutdown(ctx), srv.Shutdown(ctx))
}
