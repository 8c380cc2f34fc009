package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/upgate/upgate/gateway"
)

// newLogger returns the process's logger: text or JSON lines on w.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// announce logs where the gateway listens: one line for the public listener
// with the WebSocket URL of each route ("off" when only TLS serves), one for
// the TLS listener when there is one, one for the admin listener. Tests read
// the addresses from the "addr" attribute of these lines.
func announce(log *slog.Logger, s *settings, g *gateway.Gateway) {
	cfg := s.gatewayConfig()
	cfg.Normalize()
	log.Info("upgate started", "version", versionString(), "pid", os.Getpid(), "config", s.file,
		"max_connections", cfg.Limits.MaxConnections, "max_message", cfg.Limits.MaxMessage,
		"drain_timeout", cfg.Timeouts.Drain)

	urls := func(scheme, host string) string {
		u := make([]string, 0, len(cfg.Routes))
		for _, r := range cfg.Routes {
			if r.Behaviour != gateway.TCP && r.Behaviour != gateway.Stream {
				u = append(u, scheme+"://"+host+r.Path)
			}
		}
		return strings.Join(u, " ")
	}
	// tunnels names the tcp routes and their upstreams, for the plain
	// listener's line (tunnels are not served over TLS).
	tunnels := func(host string) []any {
		var u []string
		for _, r := range cfg.Routes {
			if r.Behaviour == gateway.TCP {
				u = append(u, "http://"+host+r.Path+"->"+r.Upstream)
			}
		}
		if u == nil {
			return nil
		}
		return []any{"tcp", strings.Join(u, " ")}
	}
	if a := g.Addr(); a != nil {
		host := dialHost(a.String())
		attrs := []any{"addr", a.String(), "websocket", urls("ws", host), "health", "http://" + host + "/healthz"}
		log.Info("public listener", append(attrs, tunnels(host)...)...)
	} else {
		log.Info("public listener", "addr", gateway.ListenOff)
	}
	if a := g.TLSAddr(); a != nil {
		host := dialHost(a.String())
		attrs := []any{"addr", a.String(), "websocket", urls("wss", host), "health", "https://" + host + "/healthz"}
		log.Info("tls listener", append(attrs, certAttrs(g)...)...)
	}

	if a := g.AdminAddr(); a != nil {
		admin := dialHost(a.String())
		log.Info("admin listener", "addr", a.String(), "metrics", "http://"+admin+"/metrics",
			"publish", "curl -X POST http://"+admin+"/publish/{topic} -d hello")
	} else {
		log.Info("admin listener", "addr", "off")
	}

	if f := g.FleetStatus(); f.Node != "" {
		attrs := []any{"node", f.Node, "prefix", f.Prefix, "bus", f.Bus}
		if f.NATS != "" {
			attrs = append(attrs, "nats", f.NATS)
			if f.Cluster != "" {
				attrs = append(attrs, "cluster", f.Cluster)
			}
		} else {
			attrs = append(attrs, "servers", strings.Join(cfg.NATS.Servers, ","))
		}
		log.Info("fleet", attrs...)
	}
}

// dialHost turns a listening address into one a local client can dial:
// an unspecified host (every interface) becomes localhost.
func dialHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// certAttrs describes the certificates the TLS listener serves, for a log
// line: each as its name, file and expiry.
func certAttrs(g *gateway.Gateway) []any {
	var attrs []any
	for _, c := range g.TLSCertificates() {
		attrs = append(attrs, fmt.Sprintf("cert%d", c.Index),
			fmt.Sprintf("%s %s expires %s", c.Name, c.Cert, c.NotAfter.UTC().Format(time.RFC3339)))
	}
	return attrs
}

// reloadTLS reloads the TLS certificates on SIGHUP and logs the outcome.
func reloadTLS(log *slog.Logger, g *gateway.Gateway) {
	switch err := g.ReloadTLS(); {
	case errors.Is(err, gateway.ErrNoTLS):
		log.Info("SIGHUP: no TLS listener, nothing to reload")
	case err != nil:
		log.Error("SIGHUP: TLS certificates not reloaded; the previous ones are still served", "err", err)
	default:
		log.Info("SIGHUP: TLS certificates reloaded", certAttrs(g)...)
	}
}

// shutdownMargin is how much longer than the drain delay and timeout the
// process waits for the gateway to stop after a signal.
const shutdownMargin = 2 * time.Second

// serve waits for a signal, then drains the gateway; a second signal ends
// the process at once. SIGHUP reloads the TLS certificates instead, at any
// time. It returns the exit status.
func serve(log *slog.Logger, g *gateway.Gateway, t gateway.Timeouts, sigs <-chan os.Signal) int {
	if t.Drain <= 0 {
		t.Drain = gateway.DefaultDrainTimeout
	}
wait:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reloadTLS(log, g)
				continue
			}
			log.Info("draining: closing every connection with 1001", "signal", sig.String(),
				"delay", t.DrainDelay, "timeout", t.Drain)
			break wait
		case <-g.Done():
			log.Error("gateway stopped without a signal")
			return exitRuntime
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), t.DrainDelay+t.Drain+shutdownMargin)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Shutdown(ctx) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				log.Error("drain failed", "err", err, "after", time.Since(start).Round(time.Millisecond))
				return exitRuntime
			}
			log.Info("stopped", "drained_in", time.Since(start).Round(time.Millisecond))
			return exitOK
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reloadTLS(log, g)
				continue
			}
			log.Warn("second signal: exiting without waiting for the drain", "signal", sig.String())
			return exitRuntime
		}
	}
}
