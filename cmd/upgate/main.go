// Command upgate runs the upgate WebSocket gateway.
//
// With no arguments it serves the default gateway: ws://localhost:8080/echo
// echoes every message, ws://localhost:8080/ws/{topic} fans messages out to
// the subscribers of a topic, and the admin listener on 127.0.0.1:9090
// serves /metrics and POST /publish/{topic}. Flags, UPGATE_* environment
// variables and a YAML file (--config) change any setting; "upgate --help"
// lists them.
//
// Exit status: 0 after a graceful drain, 1 on a runtime failure, 2 on a
// configuration error.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/upgate/upgate/gateway"
	"github.com/upgate/upgate/gateway/natsembed"
)

// Exit statuses.
const (
	exitOK      = 0
	exitRuntime = 1
	exitConfig  = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Environ(), os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit status. getenv reads one
// environment variable, environ lists them all ("KEY=value").
func run(args []string, getenv func(string) string, environ []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "version" {
		fmt.Fprintln(stdout, versionString())
		return exitOK
	}
	s, err := loadSettings(args, getenv, os.ReadFile)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "upgate: configuration: %v\n", err)
		return exitConfig
	case s.help:
		printUsage(stdout)
		return exitOK
	case s.version:
		fmt.Fprintln(stdout, versionString())
		return exitOK
	}

	log := newLogger(stderr, s.cfg.Log.Format, s.logLevel)
	for _, w := range unknownEnv(environ) {
		if w.guess != "" {
			log.Warn("unknown environment variable ignored; did you mean "+w.guess+"?", "name", w.name)
		} else {
			log.Warn("unknown environment variable ignored (see upgate --help)", "name", w.name)
		}
	}
	g, err := gateway.New(s.gatewayConfig(), gateway.WithLogger(log), gateway.WithEmbeddedNATS(natsembed.Starter{}))
	if err != nil {
		var ce *gateway.ConfigError
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "upgate: configuration: %v\n", s.explain(err))
			return exitConfig
		}
		log.Error("cannot create the gateway", "err", err)
		return exitRuntime
	}

	// Catch signals before the listeners open, so that none is lost.
	// os/signal takes the standard library's signals: os.Interrupt,
	// syscall.SIGTERM and SIGHUP (golang.org/x/sys/unix, which the loop
	// uses for its socket calls, defines the same values). SIGHUP reloads
	// the TLS certificates rather than ending the process.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt, syscall.SIGHUP)
	defer signal.Stop(sigs)

	if err := g.Start(); err != nil {
		log.Error("cannot start", "err", err)
		return exitRuntime
	}
	announce(log, s, g)
	return serve(log, g, s.cfg.Timeouts, sigs)
}
