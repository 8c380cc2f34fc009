package gateway

import (
	"crypto/tls"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/upgate/upgate/internal/testcert"
)

func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "upgate test CA")
	certA, keyA := ca.WritePair(t, dir, "a.test", testcert.Leaf{Names: []string{"a.test"}})
	certB, keyB := ca.WritePair(t, dir, "b.test", testcert.Leaf{Names: []string{"b.test"}})
	missing := filepath.Join(dir, "missing.pem")
	on := func(c *Config) {
		c.TLS.Listen = "127.0.0.1:0"
		c.TLS.Certs, c.TLS.Keys = []string{certA, certB}, []string{keyA, keyB}
	}
	cases := []struct {
		cfg    func(*Config)
		key    string // "" for a valid configuration
		reason string
	}{
		{func(c *Config) {}, "", ""},
		{on, "", ""},
		{func(c *Config) { on(c); c.Listen = ListenOff }, "", ""},
		{func(c *Config) { on(c); c.TLS.MinVersion, c.TLS.UnknownSNI, c.TLS.ClientCA = "1.3", "refuse", certA }, "", ""},
		{func(c *Config) { c.Listen = ListenOff }, "listen", "off needs tls.listen"},
		{func(c *Config) { c.Listen = "nope" }, "listen", "want host:port or off"},
		{func(c *Config) { c.TLS.Certs = []string{certA} }, "tls.certs", "tls.listen is empty"},
		{func(c *Config) { c.TLS.Keys = []string{keyA} }, "tls.keys", "tls.listen is empty"},
		{func(c *Config) { c.TLS.ClientCA = certA }, "tls.client_ca", "tls.listen is empty"},
		{func(c *Config) { on(c); c.TLS.Listen = "8443" }, "tls.listen", "want host:port"},
		{func(c *Config) { on(c); c.Listen, c.ReusePort = "127.0.0.1:8080", true }, "reuse_port", "explicit port in tls.listen"},
		{func(c *Config) { on(c); c.Listen, c.TLS.Listen, c.ReusePort = "127.0.0.1:8080", "127.0.0.1:8443", true }, "", ""},
		{func(c *Config) { on(c); c.Listen, c.TLS.Listen = ":8443", ":8443" }, "tls.listen", "must differ from listen"},
		{func(c *Config) { on(c); c.Admin = "127.0.0.1:9443"; c.TLS.Listen = c.Admin }, "tls.listen", "must differ from admin"},
		{func(c *Config) { on(c); c.TLS.Certs, c.TLS.Keys = nil, nil }, "tls.certs", "at least one certificate"},
		{func(c *Config) { on(c); c.TLS.Keys = c.TLS.Keys[:1] }, "tls.keys", "1 keys for 2 certificates"},
		{func(c *Config) { on(c); c.TLS.Keys = append(c.TLS.Keys, keyA) }, "tls.keys", "3 keys for 2 certificates"},
		{func(c *Config) { on(c); c.TLS.Certs[1] = "" }, "tls.certs[1]", "empty file name"},
		{func(c *Config) { on(c); c.TLS.MinVersion = "1.1" }, "tls.min_version", `want 1.2 or 1.3, got "1.1"`},
		{func(c *Config) { on(c); c.TLS.MinVersion = "TLS1.3" }, "tls.min_version", "want 1.2 or 1.3"},
		{func(c *Config) { on(c); c.TLS.UnknownSNI = "drop" }, "tls.unknown_sni", `want default or refuse, got "drop"`},
		{func(c *Config) { on(c); c.TLS.MaxHandshakes = -1 }, "tls.max_handshakes", "must not be negative"},
		{func(c *Config) { on(c); c.TLS.Certs[1] = missing }, "tls.certs[1]", missing + ": no such file"},
		{func(c *Config) { on(c); c.TLS.Keys[1] = keyA }, "tls.keys[1]", "does not match the certificate in " + certB},
		{func(c *Config) { on(c); c.TLS.Certs[0] = keyA }, "tls.certs[0]", "no PEM CERTIFICATE block"},
		{func(c *Config) { on(c); c.TLS.ClientCA = keyA }, "tls.client_ca", keyA},
	}
	for i, c := range cases {
		cfg := testConfig()
		c.cfg(&cfg)
		cfg.Normalize()
		err := cfg.Validate()
		if c.key == "" {
			if err != nil {
				t.Errorf("#%d: got %v; want no error", i, err)
			}
			continue
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != c.key || !strings.Contains(ce.Reason, c.reason) {
			t.Errorf("#%d: got %v; want a ConfigError on %s containing %q", i, err, c.key, c.reason)
		}
	}
}

func TestTLSConfigDefaults(t *testing.T) {
	var c Config
	c.Normalize()
	want := TLS{MinVersion: "1.2", UnknownSNI: "default", MaxHandshakes: DefaultTLSMaxHandshakes, ReloadInterval: DefaultTLSReloadInterval}
	if !equalTLS(c.TLS, want) {
		t.Errorf("got %+v; want %+v", c.TLS, want)
	}
	c.TLS = TLS{Certs: []string{"a"}, Keys: []string{"b"}, MinVersion: "1.3", UnknownSNI: "refuse", ClientCA: "ca"}
	o := c.TLS.StoreOptions()
	if o.MinVersion != tls.VersionTLS13 || !o.RefuseUnknownSNI || o.ClientCA != "ca" || len(o.Pairs) != 1 ||
		o.Pairs[0].Cert != "a" || o.Pairs[0].Key != "b" {
		t.Errorf("StoreOptions: got %+v", o)
	}
}

func equalTLS(a, b TLS) bool {
	return a.Listen == b.Listen && len(a.Certs) == len(b.Certs) && len(a.Keys) == len(b.Keys) &&
		a.ClientCA == b.ClientCA && a.MinVersion == b.MinVersion && a.UnknownSNI == b.UnknownSNI &&
		a.MaxHandshakes == b.MaxHandshakes && a.ReloadInterval == b.ReloadInterval
}
