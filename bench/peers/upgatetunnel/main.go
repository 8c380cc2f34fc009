// Command upgatetunnel is upgate's server in the benchmark's tunnel
// scenario: a gateway.Gateway with one route of behaviour tcp, so that
// "GET /tunnel" with "Upgrade: tcp" is answered 101 once the upstream is
// connected, and the two sockets are then spliced by the tunnel reactor
// (package tunnel). It stands in for cmd/upgate until the binary's
// --route takes upstream=.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/upgate/upgate/gateway"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9012", "listen address")
	upstream := flag.String("upstream", "127.0.0.1:9011", "upstream HOST:PORT every tunnel connects to")
	path := flag.String("path", "/tunnel", "the tcp route's path")
	loops := flag.Int("loops", 1, "event loops")
	reactors := flag.Int("reactors", 0, "tunnel reactor goroutines (0: GOMAXPROCS)")
	buffer := flag.Int("buffer", 0, "bytes in flight per direction of a tunnel (0: the gateway's default, 64 KiB)")
	flag.Parse()
	cfg := gateway.Config{
		Listen: *addr,
		Admin:  "off",
		Loops:  *loops,
		Routes: []gateway.Route{{Path: *path, Behaviour: gateway.TCP, Upstream: *upstream}},
		Tunnels: gateway.Tunnels{
			Buffer:   *buffer,
			Reactors: *reactors,
		},
	}
	g, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		log.Fatal(err)
	}
	if err := g.Start(); err != nil {
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
}
