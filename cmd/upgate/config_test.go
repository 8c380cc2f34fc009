package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/upgate/upgate/gateway"
)

// testFile is the name under which load serves its YAML text.
const testFile = "upgate.yaml"

// load runs loadSettings with args, an environment and, unless yamlText is
// empty, a configuration file named upgate.yaml (given with --config).
func load(args []string, env map[string]string, yamlText string) (*settings, error) {
	if yamlText != "" {
		args = append([]string{"--config", testFile}, args...)
	}
	getenv := func(k string) string { return env[k] }
	readFile := func(name string) ([]byte, error) {
		if name == testFile && yamlText != "" {
			return []byte(yamlText), nil
		}
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return loadSettings(args, getenv, readFile)
}

// value returns the value of the option named by flag.
func value(t *testing.T, s *settings, flag string) any {
	t.Helper()
	for i := range options {
		if options[i].flag == flag {
			return reflect.ValueOf(options[i].field(&s.cfg)).Elem().Interface()
		}
	}
	t.Fatalf("no option --%s", flag)
	return nil
}

// validate normalizes and validates the gateway part of s, as gateway.New
// does, and explains the error.
func validate(s *settings) error {
	cfg := s.gatewayConfig()
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return s.explain(err)
	}
	return nil
}

// leafKeys lists the YAML paths of the leaves of struct type t, not
// descending into slices.
func leafKeys(t reflect.Type, prefix string) []string {
	var keys []string
	fields := yamlFields(t)
	for _, name := range sortedKeys(fields) {
		ft := fields[name]
		if ft.Kind() == reflect.Struct && ft != durationType {
			keys = append(keys, leafKeys(ft, joinPath(prefix, name))...)
		} else {
			keys = append(keys, joinPath(prefix, name))
		}
	}
	return keys
}

func TestEveryConfigFieldHasAnOption(t *testing.T) {
	keys := leafKeys(reflect.TypeOf(fileConfig{}), "")
	s := &settings{byKey: map[string]*option{}}
	for i := range options {
		s.byKey[options[i].key] = &options[i]
	}
	seen := map[string]bool{}
	for i, key := range keys {
		seen[key] = true
		if key == routesKey {
			continue // the file's routes, or --route
		}
		if s.byKey[key] == nil {
			t.Errorf("%d: configuration key %s has no flag and environment variable", i, key)
		}
	}
	flags := map[string]bool{}
	for i, o := range options {
		if !seen[o.key] {
			t.Errorf("%d: option --%s names key %s, which the configuration does not have", i, o.flag, o.key)
		}
		if flags[o.flag] {
			t.Errorf("%d: flag --%s is defined twice", i, o.flag)
		}
		flags[o.flag] = true
		if o.usage == "" || !strings.HasSuffix(o.usage, ".") {
			t.Errorf("%d: option --%s needs a usage sentence", i, o.flag)
		}
	}
}

func TestEnvNames(t *testing.T) {
	want := []struct{ flag, env string }{
		{"listen", "UPGATE_LISTEN"},
		{"admin", "UPGATE_ADMIN"},
		{"loops", "UPGATE_LOOPS"},
		{"reuse-port", "UPGATE_REUSE_PORT"},
		{"proxy-protocol", "UPGATE_PROXY_PROTOCOL"},
		{"trusted-proxies", "UPGATE_TRUSTED_PROXIES"},
		{"max-connections", "UPGATE_MAX_CONNECTIONS"},
		{"connect-rate", "UPGATE_CONNECT_RATE"},
		{"connect-burst", "UPGATE_CONNECT_BURST"},
		{"max-message", "UPGATE_MAX_MESSAGE"},
		{"max-outbound", "UPGATE_MAX_OUTBOUND"},
		{"max-loop-backlog", "UPGATE_MAX_LOOP_BACKLOG"},
		{"max-head-bytes", "UPGATE_MAX_HEAD_BYTES"},
		{"max-header-fields", "UPGATE_MAX_HEADER_FIELDS"},
		{"fd-reserve", "UPGATE_FD_RESERVE"},
		{"conn-pool", "UPGATE_CONN_POOL"},
		{"handshake-timeout", "UPGATE_HANDSHAKE_TIMEOUT"},
		{"idle-timeout", "UPGATE_IDLE_TIMEOUT"},
		{"ping-interval", "UPGATE_PING_INTERVAL"},
		{"pong-timeout", "UPGATE_PONG_TIMEOUT"},
		{"close-timeout", "UPGATE_CLOSE_TIMEOUT"},
		{"drain-timeout", "UPGATE_DRAIN_TIMEOUT"},
		{"drain-delay", "UPGATE_DRAIN_DELAY"},
		{"nats", "UPGATE_NATS"},
		{"nats-listen", "UPGATE_NATS_LISTEN"},
		{"nats-cluster", "UPGATE_NATS_CLUSTER"},
		{"nats-cluster-listen", "UPGATE_NATS_CLUSTER_LISTEN"},
		{"nats-cluster-name", "UPGATE_NATS_CLUSTER_NAME"},
		{"nats-prefix", "UPGATE_NATS_PREFIX"},
		{"node-id", "UPGATE_NODE_ID"},
		{"auth-timeout", "UPGATE_AUTH_TIMEOUT"},
		{"auth-headers", "UPGATE_AUTH_HEADERS"},
		{"nats-queue", "UPGATE_NATS_QUEUE"},
		{"tls-listen", "UPGATE_TLS_LISTEN"},
		{"tls-cert", "UPGATE_TLS_CERT"},
		{"tls-key", "UPGATE_TLS_KEY"},
		{"tls-client-ca", "UPGATE_TLS_CLIENT_CA"},
		{"tls-min-version", "UPGATE_TLS_MIN_VERSION"},
		{"tls-unknown-sni", "UPGATE_TLS_UNKNOWN_SNI"},
		{"tls-max-handshakes", "UPGATE_TLS_MAX_HANDSHAKES"},
		{"tls-reload-interval", "UPGATE_TLS_RELOAD_INTERVAL"},
		{"deflate-level", "UPGATE_DEFLATE_LEVEL"},
		{"deflate-threshold", "UPGATE_DEFLATE_THRESHOLD"},
		{"tunnel-buffer", "UPGATE_TUNNEL_BUFFER"},
		{"tunnel-idle-timeout", "UPGATE_TUNNEL_IDLE_TIMEOUT"},
		{"tunnel-drain-timeout", "UPGATE_TUNNEL_DRAIN_TIMEOUT"},
		{"tunnel-reactors", "UPGATE_TUNNEL_REACTORS"},
		{"log-format", "UPGATE_LOG_FORMAT"},
		{"log-level", "UPGATE_LOG_LEVEL"},
	}
	if len(want) != len(options) {
		t.Errorf("%d options, this table names %d", len(options), len(want))
	}
	for i, w := range want {
		found := false
		for _, o := range options {
			if o.flag == w.flag {
				found = true
				if o.env() != w.env {
					t.Errorf("%d: --%s: env %s, want %s", i, w.flag, o.env(), w.env)
				}
			}
		}
		if !found {
			t.Errorf("%d: no option --%s", i, w.flag)
		}
	}
}

func TestPrecedence(t *testing.T) {
	// Each option type, given by the file (A), the environment (B) and a
	// flag (C) in every combination: flag > env > file > default.
	type layer struct{ yaml, env, flag string }
	types := []struct {
		flag    string
		a, b, c layer
		want    [3]any // value of A, B, C
		zero    any
	}{
		{"listen", layer{"listen: a:1", "a:2", "a:3"}, layer{}, layer{}, [3]any{"a:1", "a:2", "a:3"}, ""},
		{"max-connections", layer{"limits: {max_connections: 10}", "20", "30"}, layer{}, layer{}, [3]any{10, 20, 30}, 0},
		{"max-message", layer{"limits: {max_message: 4096}", "8192", "16384"}, layer{}, layer{}, [3]any{int64(4096), int64(8192), int64(16384)}, int64(0)},
		{"connect-rate", layer{"limits: {connect_rate: 1.5}", "2.5", "3.5"}, layer{}, layer{}, [3]any{1.5, 2.5, 3.5}, 0.0},
		{"reuse-port", layer{"reuse_port: true", "false", "true"}, layer{}, layer{}, [3]any{true, false, true}, false},
		{"drain-timeout", layer{"timeouts: {drain: 1s}", "2s", "3s"}, layer{}, layer{}, [3]any{time.Second, 2 * time.Second, 3 * time.Second}, time.Duration(0)},
		{"trusted-proxies", layer{"trusted_proxies: [10.0.0.1]", "10.0.0.2", "10.0.0.3,10.0.0.4"}, layer{}, layer{}, [3]any{[]string{"10.0.0.1"}, []string{"10.0.0.2"}, []string{"10.0.0.3", "10.0.0.4"}}, []string(nil)},
		{"log-level", layer{"log: {level: debug}", "warn", "error"}, layer{}, layer{}, [3]any{"debug", "warn", "error"}, "info"},
	}
	for i, typ := range types {
		env := "UPGATE_" + strings.ToUpper(strings.ReplaceAll(typ.flag, "-", "_"))
		for mask := 0; mask < 8; mask++ {
			useFile, useEnv, useFlag := mask&1 != 0, mask&2 != 0, mask&4 != 0
			var args []string
			envs := map[string]string{}
			yamlText := ""
			want := typ.zero
			if useFile {
				yamlText = typ.a.yaml + "\n"
				want = typ.want[0]
			}
			if useEnv {
				envs[env] = typ.a.env
				want = typ.want[1]
			}
			if useFlag {
				args = []string{"--" + typ.flag + "=" + typ.a.flag}
				want = typ.want[2]
			}
			s, err := load(args, envs, yamlText)
			if err != nil {
				t.Errorf("%d/%d: --%s file=%v env=%v flag=%v: %v", i, mask, typ.flag, useFile, useEnv, useFlag, err)
				continue
			}
			if got := value(t, s, typ.flag); !reflect.DeepEqual(got, want) {
				t.Errorf("%d/%d: --%s file=%v env=%v flag=%v: got %#v, want %#v", i, mask, typ.flag, useFile, useEnv, useFlag, got, want)
			}
		}
	}
}

func TestValues(t *testing.T) {
	cases := []struct {
		args []string
		flag string
		want any
	}{
		{[]string{"--listen", "127.0.0.1:0"}, "listen", "127.0.0.1:0"},
		{[]string{"-listen=:80"}, "listen", ":80"},
		{[]string{"--admin", "off"}, "admin", "off"},
		{[]string{"--loops", "4"}, "loops", 4},
		{[]string{"--loops", " 4 "}, "loops", 4},
		{[]string{"--reuse-port"}, "reuse-port", true},
		{[]string{"--reuse-port=false"}, "reuse-port", false},
		{[]string{"--proxy-protocol=1"}, "proxy-protocol", true},
		{[]string{"--trusted-proxies", "10.0.0.0/8, 192.168.1.1,"}, "trusted-proxies", []string{"10.0.0.0/8", "192.168.1.1"}},
		{[]string{"--trusted-proxies", ""}, "trusted-proxies", []string(nil)},
		{[]string{"--max-connections", "1000000"}, "max-connections", 1000000},
		{[]string{"--connect-rate", "0.5"}, "connect-rate", 0.5},
		{[]string{"--connect-rate", "100"}, "connect-rate", 100.0},
		{[]string{"--connect-burst", "7"}, "connect-burst", 7},
		{[]string{"--max-message", "8589934592"}, "max-message", int64(8 << 30)},
		{[]string{"--max-outbound", "65536"}, "max-outbound", 65536},
		{[]string{"--max-head-bytes", "16384"}, "max-head-bytes", 16384},
		{[]string{"--max-header-fields", "50"}, "max-header-fields", 50},
		{[]string{"--log-format", "JSON"}, "log-format", "json"},
		{[]string{"--log-level", "WARN"}, "log-level", "WARN"},
		{[]string{"--max-connections", "5", "--max-connections", "6"}, "max-connections", 6},
	}
	for i, c := range cases {
		s, err := load(c.args, nil, "")
		if err != nil {
			t.Errorf("%d: %q: %v", i, c.args, err)
			continue
		}
		if got := value(t, s, c.flag); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%d: %q: --%s = %#v, want %#v", i, c.args, c.flag, got, c.want)
		}
	}
}

func TestDurations(t *testing.T) {
	cases := []struct {
		text string
		want time.Duration
		ok   bool
	}{
		{"500ms", 500 * time.Millisecond, true},
		{"10s", 10 * time.Second, true},
		{"2m", 2 * time.Minute, true},
		{"1m30s", 90 * time.Second, true},
		{"1.5h", 90 * time.Minute, true},
		{"0s", 0, true},
		{"0", 0, true},
		{"-1s", -time.Second, true}, // whether negative is allowed is the gateway's call
		{"10", 0, false},
		{"ten seconds", 0, false},
		{"10 s", 0, false},
		{"", 0, false},
	}
	for i, c := range cases {
		// The same text as a flag, as an environment variable and in the file.
		for _, src := range []string{"flag", "env", "file"} {
			var (
				s   *settings
				err error
			)
			switch src {
			case "flag":
				s, err = load([]string{"--idle-timeout=" + c.text}, nil, "")
			case "env":
				if c.text == "" {
					continue // empty counts as unset
				}
				s, err = load(nil, map[string]string{"UPGATE_IDLE_TIMEOUT": c.text}, "")
			case "file":
				if c.text == "" || c.text == "0" {
					continue // "idle:" is null (the default); a bare 0 is an integer in YAML, refused below
				}
				s, err = load(nil, nil, fmt.Sprintf("timeouts:\n  idle: %s\n", c.text))
			}
			if !c.ok {
				if err == nil {
					t.Errorf("%d: %s %q: no error", i, src, c.text)
				} else if !strings.Contains(err.Error(), "want a duration") {
					t.Errorf("%d: %s %q: error %q does not say a duration is wanted", i, src, c.text, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%d: %s %q: %v", i, src, c.text, err)
				continue
			}
			if got := s.cfg.Timeouts.Idle; got != c.want {
				t.Errorf("%d: %s %q: got %v, want %v", i, src, c.text, got, c.want)
			}
		}
	}
	// A YAML integer is not a duration: "idle: 30" does not say seconds.
	if _, err := load(nil, nil, "timeouts:\n  idle: 30\n"); err == nil || !strings.Contains(err.Error(), "upgate.yaml:2: timeouts.idle") {
		t.Errorf("idle: 30: got %v, want an error naming upgate.yaml:2: timeouts.idle", err)
	}
}

func TestBadValuesNameTheKey(t *testing.T) {
	cases := []struct {
		args   []string
		env    map[string]string
		yaml   string
		where  string // the error starts with this
		reason string // and contains this
	}{
		{args: []string{"--max-connections", "abc"}, where: "--max-connections", reason: `want a whole number, got "abc"`},
		{args: []string{"--max-connections", "1.5"}, where: "--max-connections", reason: "whole number"},
		{args: []string{"--max-connections", "99999999999999999999"}, where: "--max-connections", reason: "out of range"},
		{args: []string{"--max-message", "1MiB"}, where: "--max-message", reason: "whole number"},
		{args: []string{"--connect-rate", "fast"}, where: "--connect-rate", reason: "want a number"},
		{args: []string{"--connect-rate", "NaN"}, where: "--connect-rate", reason: "want a number"},
		{args: []string{"--reuse-port=maybe"}, where: "--reuse-port", reason: "want true or false"},
		{args: []string{"--drain-timeout", "5"}, where: "--drain-timeout", reason: "want a duration"},
		{args: []string{"--log-format", "xml"}, where: "--log-format", reason: "want text or json"},
		{args: []string{"--log-level", "loud"}, where: "--log-level", reason: "want debug, info, warn or error"},
		{env: map[string]string{"UPGATE_MAX_CONNECTIONS": "abc"}, where: "UPGATE_MAX_CONNECTIONS", reason: "whole number"},
		{env: map[string]string{"UPGATE_IDLE_TIMEOUT": "5"}, where: "UPGATE_IDLE_TIMEOUT", reason: "want a duration"},
		{env: map[string]string{"UPGATE_REUSE_PORT": "yes please"}, where: "UPGATE_REUSE_PORT", reason: "true or false"},
		{env: map[string]string{"UPGATE_LOG_LEVEL": "loud"}, where: "UPGATE_LOG_LEVEL", reason: "want debug"},
		{yaml: "limits:\n  max_connections: lots\n", where: "upgate.yaml:2: limits.max_connections", reason: `want a whole number, got "lots"`},
		{yaml: "limits:\n  connect_rate: [1]\n", where: "upgate.yaml:2: limits.connect_rate", reason: "want a number, got a list"},
		{yaml: "reuse_port: maybe\n", where: "upgate.yaml:1: reuse_port", reason: "true or false"},
		{yaml: "trusted_proxies: 10.0.0.1\n", where: "upgate.yaml:1: trusted_proxies", reason: "want a list"},
		{yaml: "limits: 5\n", where: "upgate.yaml:1: limits", reason: "want a mapping"},
		{yaml: "routes:\n  - path: /a\n    max_message: big\n", where: "upgate.yaml:3: routes[0].max_message", reason: "whole number"},
		{yaml: "log:\n  level: loud\n", where: "upgate.yaml:2: log.level", reason: "want debug"},
		{yaml: "listen: [\n", where: "upgate.yaml", reason: "line"},
		{yaml: "listen: a:1\n---\nlisten: b:1\n", where: "upgate.yaml", reason: "more than one YAML document"},
		{yaml: "listen: a:1\nlisten: b:1\n", where: "upgate.yaml", reason: "already defined"},
		{args: []string{"--config", "missing.yaml"}, where: "missing.yaml", reason: "cannot read the configuration file"},
		{env: map[string]string{"UPGATE_CONFIG": "missing.yaml"}, where: "missing.yaml", reason: "cannot read the configuration file"},
		{args: []string{"--nope"}, where: "command line", reason: "--nope"},
		{args: []string{"--listen"}, where: "command line", reason: "needs an argument: --listen"},
		{args: []string{"serve"}, where: "command line", reason: `unexpected argument "serve"`},
		{args: []string{"--route", "/echo"}, where: `--route "/echo"`, reason: "want PATH=BEHAVIOUR"},
		{args: []string{"--route", "/echo=echo,loud"}, where: `--route "/echo=echo,loud"`, reason: `unknown route option "loud"`},
	}
	for i, c := range cases {
		_, err := load(c.args, c.env, c.yaml)
		var ce *configError
		if !errors.As(err, &ce) {
			t.Errorf("%d: %q %v %q: got %v, want a configuration error", i, c.args, c.env, c.yaml, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.where) || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("%d: %q %v %q:\n got %q\nwant %q... containing %q", i, c.args, c.env, c.yaml, err, c.where, c.reason)
		}
	}
}

func TestUnknownYAMLKeys(t *testing.T) {
	cases := []struct {
		yaml   string
		where  string
		reason string
	}{
		{"lissen: :80\n", "upgate.yaml:1: lissen", "unknown key; did you mean listen?"},
		{"listen: :80\nfoo: 1\n", "upgate.yaml:2: foo", "unknown key; known keys: admin, deflate, limits, listen"},
		{"limits:\n  max_conections: 5\n", "upgate.yaml:2: limits.max_conections", "did you mean max_connections?"},
		{"timeouts:\n  drain: 1s\n  drian_delay: 1s\n", "upgate.yaml:3: timeouts.drian_delay", "did you mean drain_delay?"},
		{"routes:\n  - path: /a\n  - path: /b\n    behavior: echo\n", "upgate.yaml:4: routes[1].behavior", "did you mean behaviour?"},
		{"log:\n  colour: true\n", "upgate.yaml:2: log.colour", "unknown key"},
		{"Listen: :80\n", "upgate.yaml:1: Listen", "did you mean listen?"},
		{"config: other.yaml\n", "upgate.yaml:1: config", "unknown key"},
	}
	for i, c := range cases {
		_, err := load(nil, nil, c.yaml)
		if err == nil {
			t.Errorf("%d: %q: no error", i, c.yaml)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.where+": ") || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("%d: %q:\n got %q\nwant %q... containing %q", i, c.yaml, err, c.where, c.reason)
		}
	}
}

// TestStrictDecoderAgrees checks that yaml.v3's strict decoding
// (KnownFields), which follows the walk, refuses unknown keys by itself too.
func TestStrictDecoderAgrees(t *testing.T) {
	var cfg fileConfig
	if err := decodeStrict(testFile, []byte("limits:\n  max_conections: 5\n"), &cfg); err == nil {
		t.Errorf("strict decode accepted an unknown key")
	}
	if err := decodeStrict(testFile, []byte("log: {level: debug}\nlimits:\n  max_connections: 5\n"), &cfg); err != nil ||
		cfg.Limits.MaxConnections != 5 || cfg.Log.Level != "debug" {
		t.Errorf("strict decode: %v, %+v", err, cfg)
	}
}

func TestYAMLFile(t *testing.T) {
	text := `# every type of field
listen: 127.0.0.1:8081
admin: "off"
loops: 3
reuse_port: true
trusted_proxies: [10.0.0.0/8, 192.0.2.7]
limits:
  max_connections: 5000
  connect_rate: 12.5
  connect_burst: 20
  max_message: 65536
  max_outbound: 1048576
  max_head_bytes: 4096
  max_header_fields: 64
timeouts:
  handshake: 5s
  idle: 1m
  ping: 20s
  pong: 5s
  close: 1s
  drain: 15s
  drain_delay: 2s
routes:
  - path: /echo
    plain_http: true
  - path: /ws/{topic}
    behaviour: pubsub
    publish: true
    origins: ["https://app.example"]
    subprotocols: [chat.v1]
    require_subprotocol: true
    max_message: 4096
log:
  format: json
  level: debug
`
	s, err := load(nil, nil, text)
	if err != nil {
		t.Fatal(err)
	}
	want := gateway.Config{
		Listen: "127.0.0.1:8081", Admin: "off", Loops: 3, ReusePort: true,
		TrustedProxies: []string{"10.0.0.0/8", "192.0.2.7"},
		Limits: gateway.Limits{MaxConnections: 5000, ConnectRate: 12.5, ConnectBurst: 20, MaxMessage: 65536,
			MaxOutbound: 1 << 20, MaxHeadBytes: 4096, MaxHeaderFields: 64},
		Timeouts: gateway.Timeouts{Handshake: 5 * time.Second, Idle: time.Minute, Ping: 20 * time.Second,
			Pong: 5 * time.Second, Close: time.Second, Drain: 15 * time.Second, DrainDelay: 2 * time.Second},
		Routes: []gateway.Route{
			{Path: "/echo", PlainHTTP: true},
			{Path: "/ws/{topic}", Behaviour: gateway.PubSub, Publish: true, Origins: []string{"https://app.example"},
				Subprotocols: []string{"chat.v1"}, RequireSubprotocol: true, MaxMessage: 4096},
		},
	}
	if got := s.gatewayConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if s.cfg.Log != (logConfig{Format: "json", Level: "debug"}) {
		t.Errorf("log: %+v", s.cfg.Log)
	}
	if err := validate(s); err != nil {
		t.Errorf("validate: %v", err)
	}
	for key, line := range map[string]int{"listen": 2, "limits.max_message": 11, "routes[1].origins[0]": 29, "routes[1].path": 26} {
		if s.lines[key] != line {
			t.Errorf("line of %s: %d, want %d", key, s.lines[key], line)
		}
	}
}

func TestEmptyFileAndEmptyEnv(t *testing.T) {
	for i, text := range []string{"\n", "# nothing\n", "---\n", "listen:\n"} {
		s, err := load(nil, map[string]string{"UPGATE_LISTEN": "", "UPGATE_MAX_CONNECTIONS": ""}, text)
		if err != nil {
			t.Errorf("%d: %q: %v", i, text, err)
			continue
		}
		if s.cfg.Listen != "" || s.cfg.Limits.MaxConnections != 0 {
			t.Errorf("%d: %q: %+v, want defaults", i, text, s.cfg.Config)
		}
	}
}

func TestRouteFlag(t *testing.T) {
	cases := []struct {
		spec string
		want gateway.Route
	}{
		{"/echo=echo", gateway.Route{Path: "/echo", Behaviour: gateway.Echo}},
		{"/e=echo,plain_http", gateway.Route{Path: "/e", Behaviour: gateway.Echo, PlainHTTP: true}},
		{"/ws/{topic}=pubsub", gateway.Route{Path: "/ws/{topic}", Behaviour: gateway.PubSub}},
		{"/ws/{topic}=pubsub,publish,plain-http", gateway.Route{Path: "/ws/{topic}", Behaviour: gateway.PubSub, Publish: true, PlainHTTP: true}},
		{"/raw=echo,no_deflate", gateway.Route{Path: "/raw", Behaviour: gateway.Echo, NoDeflate: true}},
		{"/db=tcp,upstream=127.0.0.1:5432", gateway.Route{Path: "/db", Behaviour: gateway.TCP, Upstream: "127.0.0.1:5432"}},
		{"/vnc=websockify,upstream=vnc:5900,connect_timeout=2s,max_tunnels=10", gateway.Route{Path: "/vnc", Behaviour: gateway.Websockify, Upstream: "vnc:5900", ConnectTimeout: 2 * time.Second, MaxTunnels: 10}},
	}
	for i, c := range cases {
		got, err := parseRoute(c.spec)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%d: %q: got %+v, %v; want %+v", i, c.spec, got, err, c.want)
		}
	}
	// --route replaces the file's routes, in the order given.
	s, err := load([]string{"--route", "/a=echo", "--route", "/b/{topic}=pubsub,publish"}, nil, "routes:\n  - path: /file\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.gatewayConfig().Routes; len(got) != 2 || got[0].Path != "/a" || got[1].Path != "/b/{topic}" || !got[1].Publish {
		t.Errorf("routes %+v", got)
	}
	for i, spec := range []string{"/db=tcp,max_tunnels=x", "/db=tcp,connect_timeout=5", "/db=tcp,upstreams=a:1"} {
		if _, err := parseRoute(spec); err == nil {
			t.Errorf("bad %d: %q: no error", i, spec)
		}
	}
	// Default routes and tunnel routes round-trip through the flag's syntax.
	for i, r := range append(gateway.DefaultRoutes(), cases[5].want, cases[6].want) {
		got, err := parseRoute(formatRoute(r))
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("default route %d: %q parses to %+v, %v", i, formatRoute(r), got, err)
		}
	}
}

func TestGatewayErrorsNameTheSource(t *testing.T) {
	cases := []struct {
		args  []string
		env   map[string]string
		yaml  string
		where string // the explained error starts with where + ": "
	}{
		{args: []string{"--listen", "nope"}, where: "--listen"},
		{env: map[string]string{"UPGATE_LISTEN": "nope"}, where: "UPGATE_LISTEN"},
		{yaml: "admin: off\nlisten: nope\n", where: "upgate.yaml:2: listen"},
		{yaml: "listen: nope\n", args: []string{"--listen", "also-nope"}, where: "--listen"},
		{args: []string{"--max-connections", "-1"}, where: "--max-connections"},
		{env: map[string]string{"UPGATE_CONNECT_RATE": "-2"}, where: "UPGATE_CONNECT_RATE"},
		{yaml: "limits:\n  max_head_bytes: 99999999\n", where: "upgate.yaml:2: limits.max_head_bytes"},
		{env: map[string]string{"UPGATE_PONG_TIMEOUT": "-1s"}, where: "UPGATE_PONG_TIMEOUT"},
		{args: []string{"--drain-delay=-1s"}, where: "--drain-delay"},
		{args: []string{"--loops", "5000"}, where: "--loops"},
		{args: []string{"--trusted-proxies", "10.0.0.1,bad"}, where: "--trusted-proxies (trusted_proxies[1])"},
		{yaml: "trusted_proxies:\n  - 10.0.0.1\n  - bad\n", where: "upgate.yaml:3: trusted_proxies[1]"},
		{yaml: "routes:\n  - path: /a\n  - path: b\n", where: "upgate.yaml:3: routes[1].path"},
		{yaml: "routes:\n  - path: /a\n    behaviour: shout\n", where: "upgate.yaml:3: routes[0].behaviour"},
		{yaml: "routes:\n  - path: /a\n    origins:\n      - example.com\n", where: "upgate.yaml:4: routes[0].origins[0]"},
		{yaml: "routes:\n  - path: /a\n    require_subprotocol: true\n", where: "upgate.yaml:3: routes[0].require_subprotocol"},
		{args: []string{"--route", "/a=echo", "--route", "b=echo"}, where: "--route (routes[1].path)"},
		{args: []string{"--route", "/a=shout"}, where: "--route (routes[0].behaviour)"},
		{args: []string{"--listen", "127.0.0.1:9090"}, where: "--admin (default)"},
		{args: []string{"--reuse-port", "--listen", "127.0.0.1:0"}, where: "--reuse-port"},
		{args: []string{"--deflate-level", "10"}, where: "--deflate-level"},
		{env: map[string]string{"UPGATE_DEFLATE_THRESHOLD": "-1"}, where: "UPGATE_DEFLATE_THRESHOLD"},
		{yaml: "deflate:\n  level: 12\n", where: "upgate.yaml:2: deflate.level"},
		{yaml: "routes:\n  - path: /a\n    no_deflate: true\n    deflate_level: 3\n", where: "upgate.yaml:4: routes[0].deflate_level"},
	}
	for i, c := range cases {
		s, err := load(c.args, c.env, c.yaml)
		if err != nil {
			t.Errorf("%d: %q %v %q: load: %v", i, c.args, c.env, c.yaml, err)
			continue
		}
		err = validate(s)
		var ce *configError
		if !errors.As(err, &ce) {
			t.Errorf("%d: %q %v %q: got %v, want a configuration error", i, c.args, c.env, c.yaml, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.where+": ") {
			t.Errorf("%d: %q %v %q:\n got %q\nwant %q...", i, c.args, c.env, c.yaml, err, c.where)
		}
	}
	// Other errors pass through.
	other := errors.New("boom")
	if got := (&settings{}).explain(other); got != other {
		t.Errorf("explain(other) = %v", got)
	}
}

func TestExampleFile(t *testing.T) {
	data, err := os.ReadFile("upgate.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := loadSettings([]string{"--config", "upgate.example.yaml"}, func(string) string { return "" }, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(s); err != nil {
		t.Fatalf("the example does not validate: %v", err)
	}
	// It documents every key.
	for i, key := range leafKeys(reflect.TypeOf(fileConfig{}), "") {
		leaf := key[strings.LastIndex(key, ".")+1:]
		if !bytes.Contains(data, []byte(leaf+":")) {
			t.Errorf("%d: upgate.example.yaml does not mention %s", i, key)
		}
	}
	for i, key := range leafKeys(reflect.TypeOf(gateway.Route{}), "") {
		if !bytes.Contains(data, []byte(key+":")) {
			t.Errorf("%d: upgate.example.yaml does not mention routes' %s", i, key)
		}
	}
}

func TestUsageListsEveryOption(t *testing.T) {
	var b strings.Builder
	printUsage(&b)
	help := b.String()
	for i, o := range options {
		for _, want := range []string{"--" + o.flag, o.env(), "file: " + o.key + ","} {
			if !strings.Contains(help, want) {
				t.Errorf("%d: --help does not mention %q", i, want)
			}
		}
	}
	for _, want := range []string{"--config FILE", "UPGATE_CONFIG", "--route", "upgate version", "default :8080", "default 127.0.0.1:9090", "default 10s"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
	for i, line := range strings.Split(help, "\n") {
		if len(line) > 80 {
			t.Errorf("help line %d is %d characters long: %q", i+1, len(line), line)
		}
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"--listen", "x", "--help"}} {
		s, err := load(args, nil, "")
		if err != nil || !s.help {
			t.Errorf("%q: help %v, err %v", args, s != nil && s.help, err)
		}
	}
}

func TestDialHost(t *testing.T) {
	cases := []struct{ in, want string }{
		{"[::]:8080", "localhost:8080"},
		{"0.0.0.0:8080", "localhost:8080"},
		{":8080", "localhost:8080"},
		{"127.0.0.1:9090", "127.0.0.1:9090"},
		{"[::1]:9090", "[::1]:9090"},
		{"192.0.2.1:80", "192.0.2.1:80"},
	}
	for i, c := range cases {
		if got := dialHost(c.in); got != c.want {
			t.Errorf("%d: dialHost(%q) = %q, want %q", i, c.in, got, c.want)
		}
	}
}

func TestReadmeDocumentsEveryOption(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for i, o := range options {
		for _, want := range []string{"`--" + o.flag, "`" + o.env() + "`", "`" + o.key + "`"} {
			if !strings.Contains(readme, want) {
				t.Errorf("%d: README.md does not document %s", i, want)
			}
		}
	}
	for _, want := range []string{"go run ./cmd/upgate", "./scripts/test.sh", "`UPGATE_CONFIG`", "`--route", "upgate.example.yaml", "upgate.service"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md does not mention %s", want)
		}
	}
}
