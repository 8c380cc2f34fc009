// Command splice is the baseline of the benchmark's tunnel scenario: a Go
// TCP proxy that answers "Upgrade: tcp" with a 101 and then copies both
// ways with io.Copy on a goroutine pair, which on Linux moves the bytes
// with splice(2) ((*net.TCPConn).ReadFrom). See package
// bench/internal/splice.
package main

import (
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/upgate/upgate/bench/internal/splice"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9010", "listen address")
	upstream := flag.String("upstream", "127.0.0.1:9011", "upstream HOST:PORT every tunnel connects to")
	loops := flag.Int("loops", 1, "accepting goroutines (the copies run on goroutines of their own)")
	flag.Parse()
	if *loops < 1 || *loops > 256 {
		log.Fatalf("splice: -loops is %d; want 1 to 256", *loops)
	}
	s, err := splice.New(splice.Options{Upstream: *upstream})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-sig
		_ = s.Close()
	}()
	errs := make(chan error, *loops)
	for range *loops {
		go func() { errs <- s.Serve(ln) }()
	}
	if err := <-errs; err != splice.ErrClosed {
		log.Fatal(err)
	}
}
