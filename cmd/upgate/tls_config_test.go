package main

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/upgate/upgate/gateway"
	"github.com/upgate/upgate/internal/testcert"
)

func TestTLSConfigValues(t *testing.T) {
	file := "tls:\n  listen: :8443\n  certs: [f1.pem, f2.pem]\n  keys: [f1.key, f2.key]\n  client_ca: ca.pem\n" +
		"  min_version: 1.3\n  unknown_sni: refuse\n  max_handshakes: 64\n  reload_interval: 1m\n"
	cases := []struct {
		args []string
		env  map[string]string
		yaml string
		want gateway.TLS
	}{
		{yaml: file, want: gateway.TLS{Listen: ":8443", Certs: []string{"f1.pem", "f2.pem"}, Keys: []string{"f1.key", "f2.key"},
			ClientCA: "ca.pem", MinVersion: "1.3", UnknownSNI: "refuse", MaxHandshakes: 64, ReloadInterval: time.Minute}},
		{args: []string{"--tls-listen", ":443", "--tls-cert", "a.pem", "--tls-key", "a.key", "--tls-cert", "b.pem", "--tls-key", "b.key"},
			want: gateway.TLS{Listen: ":443", Certs: []string{"a.pem", "b.pem"}, Keys: []string{"a.key", "b.key"}}},
		{args: []string{"--tls-cert", "a.pem,b.pem", "--tls-cert=c.pem", "--tls-key", "a.key,b.key,c.key"},
			want: gateway.TLS{Certs: []string{"a.pem", "b.pem", "c.pem"}, Keys: []string{"a.key", "b.key", "c.key"}}},
		{env: map[string]string{"UPGATE_TLS_CERT": "e1.pem,e2.pem", "UPGATE_TLS_KEY": "e1.key, e2.key", "UPGATE_TLS_MIN_VERSION": "1.3",
			"UPGATE_TLS_UNKNOWN_SNI": "refuse", "UPGATE_TLS_MAX_HANDSHAKES": "10", "UPGATE_TLS_RELOAD_INTERVAL": "-1s", "UPGATE_TLS_CLIENT_CA": "ca.pem"},
			want: gateway.TLS{Certs: []string{"e1.pem", "e2.pem"}, Keys: []string{"e1.key", "e2.key"}, MinVersion: "1.3",
				UnknownSNI: "refuse", MaxHandshakes: 10, ReloadInterval: -time.Second, ClientCA: "ca.pem"}},
		// A flag's list replaces the environment's, which replaces the file's.
		{args: []string{"--tls-cert", "flag.pem"}, env: map[string]string{"UPGATE_TLS_CERT": "env.pem", "UPGATE_TLS_KEY": "env.key"},
			yaml: "tls:\n  certs: [file.pem]\n  keys: [file.key]\n  listen: :1\n",
			want: gateway.TLS{Listen: ":1", Certs: []string{"flag.pem"}, Keys: []string{"env.key"}}},
	}
	for i, c := range cases {
		s, err := load(c.args, c.env, c.yaml)
		if err != nil {
			t.Errorf("#%d: %q %v: %v", i, c.args, c.env, err)
			continue
		}
		if got := s.gatewayConfig().TLS; !reflect.DeepEqual(got, c.want) {
			t.Errorf("#%d: %q %v: got %+v; want %+v", i, c.args, c.env, got, c.want)
		}
	}
}

func TestTLSConfigErrorsNameTheSource(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "upgate test CA")
	cert, key := ca.WritePair(t, dir, "a.test", testcert.Leaf{Names: []string{"a.test"}})
	_, otherKey := ca.WritePair(t, dir, "b.test", testcert.Leaf{Names: []string{"b.test"}})
	cases := []struct {
		args   []string
		env    map[string]string
		yaml   string
		where  string // the error starts with where + ": "
		reason string
	}{
		{args: []string{"--listen", "off"}, where: "--listen", reason: "off needs tls.listen"},
		{args: []string{"--tls-listen", ":8443", "--tls-cert", cert, "--tls-cert", cert, "--tls-key", key},
			where: "--tls-key", reason: "1 keys for 2 certificates: give one key per certificate, in the same order"},
		{args: []string{"--tls-listen", ":8443", "--tls-cert", cert}, where: "--tls-key (default)", reason: "0 keys for 1 certificates"},
		{args: []string{"--tls-listen", ":8443"}, where: "--tls-cert (default)", reason: "at least one certificate"},
		{yaml: "tls:\n  listen: :8443\n  certs: [" + cert + "]\n  keys: [" + key + ", " + key + "]\n",
			where: "upgate.yaml:4: tls.keys", reason: "2 keys for 1 certificates"},
		{args: []string{"--tls-listen", ":8443", "--tls-cert", cert, "--tls-key", otherKey},
			where: "--tls-key (tls.keys[0])", reason: otherKey + ": tlscert: private key does not match the certificate in " + cert},
		{yaml: "tls:\n  listen: :8443\n  certs:\n    - " + cert + "\n    - " + filepath.Join(dir, "nope.pem") + "\n  keys: [" + key + ", " + key + "]\n",
			where: "upgate.yaml:5: tls.certs[1]", reason: "nope.pem: no such file or directory"},
		{args: []string{"--tls-listen", ":8443", "--tls-cert", cert, "--tls-key", key}, env: map[string]string{"UPGATE_TLS_MIN_VERSION": "1.0"},
			where: "UPGATE_TLS_MIN_VERSION", reason: `want 1.2 or 1.3, got "1.0"`},
		{args: []string{"--tls-listen", ":8443", "--tls-cert", cert, "--tls-key", key, "--tls-unknown-sni", "ignore"},
			where: "--tls-unknown-sni", reason: `want default or refuse, got "ignore"`},
		{args: []string{"--tls-listen", ":8443", "--tls-cert", cert, "--tls-key", key, "--tls-max-handshakes", "-1"},
			where: "--tls-max-handshakes", reason: "must not be negative"},
		{args: []string{"--tls-listen", ":8443", "--tls-cert", cert, "--tls-key", key, "--tls-client-ca", key},
			where: "--tls-client-ca", reason: "no PEM CERTIFICATE block"},
		{args: []string{"--tls-listen", "8443", "--tls-cert", cert, "--tls-key", key}, where: "--tls-listen", reason: "want host:port"},
	}
	for i, c := range cases {
		s, err := load(c.args, c.env, c.yaml)
		if err != nil {
			t.Errorf("#%d: %q: load: %v", i, c.args, err)
			continue
		}
		err = validate(s)
		if err == nil || !strings.HasPrefix(err.Error(), c.where+": ") || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("#%d: %q %v %q:\n got %v\nwant %q... containing %q", i, c.args, c.env, c.yaml, err, c.where, c.reason)
		}
	}
	// File mistakes name the key and its line before the gateway sees them.
	for i, c := range []struct{ yaml, want string }{
		{"tls:\n  cert: [a.pem]\n", "upgate.yaml:2: tls.cert: unknown key; did you mean certs?"},
		{"tls:\n  certs: a.pem\n", "upgate.yaml:2: tls.certs: want a list"},
		{"tls:\n  max_handshakes: many\n", "upgate.yaml:2: tls.max_handshakes: want a whole number"},
		{"tls:\n  reload_interval: 30\n", "upgate.yaml:2: tls.reload_interval: want a duration"},
	} {
		if _, err := load(nil, nil, c.yaml); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("#%d: %q: got %v; want %q", i, c.yaml, err, c.want)
		}
	}
}
