package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/upgate/upgate/gateway/tlscert"
)

// TLS is the gateway's TLS listener, wss:// and https:// for /healthz and
// /readyz, TLS being terminated on the event loops beside the plain
// listener (Config.Listen, which may be off). It is off while Listen is
// empty.
type TLS struct {
	// Listen is the TLS listener's address, "host:port"; empty turns it
	// off. With it, Config.Listen may be "off" to serve TLS only.
	Listen string `yaml:"listen"`
	// Certs and Keys are PEM files, in pairs: Keys[i] is the private key
	// of the certificate chain in Certs[i] (leaf first). The certificate
	// is chosen by the server name a client sends (SNI) among the DNS
	// names of the certificates (exact names before wildcards); Certs[0]
	// is the default.
	Certs []string `yaml:"certs"`
	Keys  []string `yaml:"keys"`
	// ClientCA, when set, is a PEM file of the authorities that sign
	// client certificates: every client must present one (mutual TLS).
	ClientCA string `yaml:"client_ca"`
	// MinVersion is the oldest TLS version accepted, "1.2" or "1.3".
	// Empty means DefaultTLSMinVersion.
	MinVersion string `yaml:"min_version"`
	// UnknownSNI says what a client whose server name no certificate
	// covers, or that sends none, gets: "default" the default certificate
	// (Certs[0]), "refuse" a failed handshake. Empty means "default".
	UnknownSNI string `yaml:"unknown_sni"`
	// MaxHandshakes caps the TLS handshakes in progress over all event
	// loops; a connection beyond it is closed before its handshake and
	// counted. Zero means DefaultTLSMaxHandshakes.
	MaxHandshakes int `yaml:"max_handshakes"`
	// ReloadInterval is how often the certificate, key and client CA
	// files are checked for changes (modification time, size, inode); a
	// change reloads them, a failed reload keeps the old ones. Zero means
	// DefaultTLSReloadInterval; negative turns the check off.
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// Defaults of TLS.
const (
	DefaultTLSMinVersion = "1.2"
	DefaultTLSUnknownSNI = "default"
	// DefaultTLSMaxHandshakes bounds what handshakes in progress may
	// take: each holds crypto/tls's buffers, some tens of KiB, so the cap
	// keeps them to tens of MiB, while a few cores complete some
	// thousands of ECDSA handshakes a second, each in progress for a
	// round trip or two: 1024 leaves honest clients room and a flood of
	// stalled handshakes (each ended by timeouts.handshake) a bound.
	DefaultTLSMaxHandshakes = 1024
	// DefaultTLSReloadInterval is short enough that a renewed certificate
	// is served well before the old one expires, long enough that the
	// check (a stat per file) costs nothing.
	DefaultTLSReloadInterval = 30 * time.Second
)

// TLS.UnknownSNI values.
const (
	UnknownSNIDefault = "default"
	UnknownSNIRefuse  = "refuse"
)

// ListenOff is the value of Config.Listen that turns the public plain
// listener off; it needs TLS.Listen.
const ListenOff = "off"

func (t *TLS) normalize() {
	if t.MinVersion == "" {
		t.MinVersion = DefaultTLSMinVersion
	}
	if t.UnknownSNI == "" {
		t.UnknownSNI = DefaultTLSUnknownSNI
	}
	if t.MaxHandshakes == 0 {
		t.MaxHandshakes = DefaultTLSMaxHandshakes
	}
	if t.ReloadInterval == 0 {
		t.ReloadInterval = DefaultTLSReloadInterval
	}
}

// StoreOptions returns the options of the certificate store t describes.
// t must be normalized and valid.
func (t *TLS) StoreOptions() tlscert.Options {
	o := tlscert.Options{
		ClientCA:         t.ClientCA,
		MinVersion:       tls.VersionTLS12,
		RefuseUnknownSNI: t.UnknownSNI == UnknownSNIRefuse,
	}
	if t.MinVersion == "1.3" {
		o.MinVersion = tls.VersionTLS13
	}
	for i := range t.Certs {
		o.Pairs = append(o.Pairs, tlscert.Pair{Cert: t.Certs[i], Key: t.Keys[i]})
	}
	return o
}

// validate checks the TLS settings of c, reading every file.
func (c *Config) validateTLS() error {
	t := &c.TLS
	bad := func(key, format string, a ...any) error {
		return &ConfigError{Key: key, Reason: fmt.Sprintf(format, a...)}
	}
	if t.Listen == "" {
		switch {
		case c.Listen == ListenOff:
			return bad("listen", "off needs tls.listen: with both listeners off nothing is served")
		case len(t.Certs) > 0:
			return bad("tls.certs", "certificates are given but tls.listen is empty: set it to serve TLS, or leave the certificates out")
		case len(t.Keys) > 0:
			return bad("tls.keys", "keys are given but tls.listen is empty: set it to serve TLS, or leave the keys out")
		case t.ClientCA != "":
			return bad("tls.client_ca", "a client CA is given but tls.listen is empty: set it to serve TLS, or leave it out")
		}
		return nil
	}
	_, port, err := net.SplitHostPort(t.Listen)
	if err != nil {
		return bad("tls.listen", "want host:port, got %q", t.Listen)
	}
	if t.Listen == c.Listen && port != "0" {
		return bad("tls.listen", "must differ from listen (%q)", c.Listen)
	}
	if c.ReusePort && (port == "0" || port == "") {
		return bad("reuse_port", "needs an explicit port in tls.listen, got %q", t.Listen)
	}
	if t.Listen == c.Admin && port != "0" {
		return bad("tls.listen", "must differ from admin (%q)", c.Admin)
	}
	switch {
	case len(t.Certs) == 0:
		return bad("tls.certs", "tls.listen needs at least one certificate file, with its key in tls.keys")
	case len(t.Keys) != len(t.Certs):
		return bad("tls.keys", "%d keys for %d certificates: give one key per certificate, in the same order", len(t.Keys), len(t.Certs))
	}
	for i := range t.Certs {
		if t.Certs[i] == "" {
			return bad(fmt.Sprintf("tls.certs[%d]", i), "empty file name")
		}
		if t.Keys[i] == "" {
			return bad(fmt.Sprintf("tls.keys[%d]", i), "empty file name")
		}
	}
	if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
		return bad("tls.min_version", "want 1.2 or 1.3, got %q", t.MinVersion)
	}
	if t.UnknownSNI != UnknownSNIDefault && t.UnknownSNI != UnknownSNIRefuse {
		return bad("tls.unknown_sni", "want default or refuse, got %q", t.UnknownSNI)
	}
	if t.MaxHandshakes < 0 {
		return bad("tls.max_handshakes", "must not be negative, got %d", t.MaxHandshakes)
	}
	if _, err := tlscert.New(t.StoreOptions()); err != nil {
		var fe *tlscert.FileError
		if !errors.As(err, &fe) {
			return bad("tls.certs", "%v", err)
		}
		key := "tls.client_ca"
		switch fe.Kind {
		case tlscert.KindCert:
			key = fmt.Sprintf("tls.certs[%d]", fe.Index)
		case tlscert.KindKey:
			key = fmt.Sprintf("tls.keys[%d]", fe.Index)
		}
		return bad(key, "%s: %v", fe.Path, fe.Err)
	}
	return nil
}
