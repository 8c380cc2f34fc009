package main

import (
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/upgate/upgate/gateway"
)

// printUsage writes --help: every option with its environment variable, its
// key in the configuration file and its default.
func printUsage(w io.Writer) {
	var b strings.Builder
	b.WriteString(`upgate serves WebSocket connections on a few event loops.

Usage:
  upgate [flags]      serve; with no flags, ws://localhost:8080/echo and
                      ws://localhost:8080/ws/{topic}, admin on 127.0.0.1:9090
  upgate version      print the version (also --version)
  upgate --help       print this help

Each setting comes from its flag, else its UPGATE_* environment variable
(empty counts as unset; an unknown one is warned about at start), else the
configuration file, else the default.
Flags take --name value or --name=value; booleans are --name or
--name=false. Durations need a unit (500ms, 10s, 2m), sizes are bytes, and
lists are comma-separated in flags and environment variables. Zero means the
default unless said otherwise.

Configuration file:
  --config FILE
      YAML file with any of the keys below, plus routes (see
      upgate.example.yaml). Unknown keys are refused.
      env UPGATE_CONFIG, default none
  --route PATH=BEHAVIOUR[,publish][,plain_http][,auth][,no_deflate][,subject=S]
          [,upstream=HOST:PORT][,connect_timeout=D][,max_tunnels=N]
      A route (repeatable), replacing the file's routes: echo; pubsub on a
      path ending in /{topic}; bridge (needs --nats), whose clients'
      messages go to <prefix>.in.<S> for backends; tcp, a tunnel to
      upstream for clients asking Upgrade: tcp; websockify, a WebSocket
      whose binary messages are a byte stream to upstream. publish lets
      pubsub clients publish to their topic, plain_http answers plain HTTP
      requests with 200 instead of 426, auth makes handshakes wait for the
      authorisation service on <prefix>.auth (needs --nats), no_deflate
      declines permessage-deflate; connect_timeout bounds a tunnel's
      upstream connect (504 beyond, 502 when refused), max_tunnels the
      route's tunnels at once.
      Example: --route /echo=echo --route '/ws/{topic}=pubsub,publish'
      --route '/chat/{topic}=bridge,auth'
      --route '/vnc=websockify,upstream=127.0.0.1:5900'
`)
	var specs []string
	for _, r := range gateway.DefaultRoutes() {
		specs = append(specs, formatRoute(r))
	}
	fmt.Fprintf(&b, "      file: routes, default %s\n", strings.Join(specs, " "))
	defaults := fileConfig{}
	defaults.Config.Normalize()
	defaults.Log = logConfig{Format: defaultLogFormat, Level: defaultLogLevel}
	group := ""
	for i := range options {
		o := &options[i]
		if o.group != group {
			group = o.group
			fmt.Fprintf(&b, "\n%s:\n", group)
		}
		head := "  --" + o.flag
		if o.meta != "" {
			head += " " + o.meta
		}
		b.WriteString(head + "\n")
		for _, line := range wrap(o.usage, 70) {
			b.WriteString("      " + line + "\n")
		}
		def := formatValue(o.field(&defaults))
		if o.zero != "" && isZero(o.field(&defaults)) {
			def += " (" + o.zero + ")"
		}
		for _, line := range wrap(fmt.Sprintf("env %s, file: %s, default %s", o.env(), o.key, def), 72) {
			b.WriteString("      " + line + "\n")
		}
	}
	b.WriteString(`
Signals: SIGTERM or SIGINT drains (every connection is closed with 1001, then
the process exits 0); a second signal exits 1 at once. SIGHUP reloads the TLS
certificate, key and client CA files (a failed reload keeps the previous
ones and says why in the log).
Exit status: 0 after a drain, 1 on a runtime failure, 2 on a configuration
error.
`)
	io.WriteString(w, b.String())
}

// formatRoute renders r as a --route value, leaving out what that syntax
// cannot say.
func formatRoute(r gateway.Route) string {
	s := r.Path + "=" + string(r.Behaviour)
	if r.Publish {
		s += ",publish"
	}
	if r.PlainHTTP {
		s += ",plain_http"
	}
	if r.Auth {
		s += ",auth"
	}
	if r.NoDeflate {
		s += ",no_deflate"
	}
	if r.Subject != "" {
		s += ",subject=" + r.Subject
	}
	if r.Upstream != "" {
		s += ",upstream=" + r.Upstream
	}
	if r.ConnectTimeout != 0 {
		s += ",connect_timeout=" + r.ConnectTimeout.String()
	}
	if r.MaxTunnels != 0 {
		s += ",max_tunnels=" + strconv.Itoa(r.MaxTunnels)
	}
	return s
}

// formatValue renders a field's value as a user would write it.
func formatValue(ptr any) string {
	switch p := ptr.(type) {
	case *string:
		if *p == "" {
			return `""`
		}
		return *p
	case *time.Duration:
		return p.String()
	case *[]string:
		if len(*p) == 0 {
			return `""`
		}
		return strings.Join(*p, ",")
	}
	return fmt.Sprint(reflect.ValueOf(ptr).Elem().Interface())
}

func isZero(ptr any) bool { return reflect.ValueOf(ptr).Elem().IsZero() }

// wrap splits text into lines of at most width characters.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
