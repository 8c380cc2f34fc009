package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/upgate/upgate/gateway/tlscert"
	"github.com/upgate/upgate/loop"
)

// The TLS listener. With Config.TLS.Listen the event loops serve a second
// listener that speaks TLS (loop.Options.TLSAddr), with the certificates
// of a tlscert.Store: chosen by SNI, reloaded when their files change
// (TLS.ReloadInterval) and on ReloadTLS (SIGHUP in cmd/upgate), a failed
// reload keeping the old ones. Connections of both listeners are served
// alike.

// ErrNoTLS is returned by ReloadTLS on a gateway without a TLS listener.
var ErrNoTLS = errors.New("gateway: no TLS listener (tls.listen is empty)")

// newCertStore loads the TLS listener's certificates, when there is one.
func (g *Gateway) newCertStore() error {
	if g.cfg.TLS.Listen == "" {
		return nil
	}
	store, err := tlscert.New(g.cfg.TLS.StoreOptions())
	if err != nil {
		return fmt.Errorf("gateway: TLS certificates: %w", err)
	}
	g.certs = store
	return nil
}

// tlsLoopOptions adds the TLS listener to the loop's options.
func (g *Gateway) tlsLoopOptions(o *loop.Options) {
	if g.certs == nil {
		return
	}
	t := g.cfg.TLS
	o.TLS = g.certs.TLSConfig() // offers ALPN http/1.1
	o.TLSAddr = t.Listen
	o.MaxTLSHandshakes = t.MaxHandshakes
	o.TLSFailureOf = tlsFailureOf
	if g.cfg.Listen == ListenOff {
		o.Addr = loop.ListenOff
	}
}

// tlsFailureOf names the store's refusal of an unknown server name.
func tlsFailureOf(err error) (loop.TLSFailure, bool) {
	if errors.Is(err, tlscert.ErrUnknownServerName) {
		return loop.TLSFailUnknownSNI, true
	}
	return 0, false
}

// watchCerts polls the certificate files for the gateway's lifetime, from
// Start; the gateway's end stops it (stopCerts).
func (g *Gateway) watchCerts() {
	if g.certs == nil || g.cfg.TLS.ReloadInterval <= 0 {
		return
	}
	g.stopCerts = g.certs.Watch(g.cfg.TLS.ReloadInterval, func(err error) {
		g.logReload("files changed", err)
	})
}

// logReload logs the outcome of a reload.
func (g *Gateway) logReload(why string, err error) {
	if err != nil {
		g.log.Warn("gateway: TLS certificates not reloaded; the previous ones are still served",
			"why", why, "err", err)
		return
	}
	attrs := []any{"why", why}
	for _, c := range g.certs.Certificates() {
		attrs = append(attrs, fmt.Sprintf("cert%d", c.Index), fmt.Sprintf("%s (%s, expires %s)",
			c.Name, c.Cert, c.NotAfter.UTC().Format(time.RFC3339)))
	}
	g.log.Info("gateway: TLS certificates reloaded", attrs...)
}

// ReloadTLS reads the TLS listener's certificate, key and client CA files
// again. On success new handshakes get the new certificates (connections
// already open keep theirs); on failure the previous certificates are
// still served and the error (a *tlscert.FileError for a file) says which
// file and why. Either way the attempt is counted in the metrics. It
// returns ErrNoTLS without a TLS listener. Any goroutine.
func (g *Gateway) ReloadTLS() error {
	if g.certs == nil {
		return ErrNoTLS
	}
	return g.certs.Reload()
}

// TLSAddr returns the TLS listener's address (with the port chosen for
// port 0), or nil without one or before Start. Any goroutine.
func (g *Gateway) TLSAddr() net.Addr { return g.srv.TLSAddr() }

// TLSCertificates describes the certificates the TLS listener serves, in
// the order of Config.TLS.Certs; nil without a TLS listener. Any goroutine.
func (g *Gateway) TLSCertificates() []tlscert.Info {
	if g.certs == nil {
		return nil
	}
	return g.certs.Certificates()
}

// tlsCertJSON is one certificate in the admin API's GET /tls.
type tlsCertJSON struct {
	Index     int      `json:"index"`
	Name      string   `json:"name"`
	DNSNames  []string `json:"dns_names"`
	Cert      string   `json:"cert"`
	Key       string   `json:"key"`
	NotAfter  string   `json:"not_after"`
	ExpiresIn float64  `json:"expires_in_seconds"`
}

// serveTLSStatus answers GET /tls: the TLS listener and its certificates.
func (g *Gateway) serveTLSStatus(w http.ResponseWriter, _ *http.Request) {
	if g.certs == nil {
		writeError(w, http.StatusNotFound, "no TLS listener (tls.listen is empty)")
		return
	}
	now := time.Now()
	certs := []tlsCertJSON{}
	for _, c := range g.certs.Certificates() {
		certs = append(certs, tlsCertJSON{Index: c.Index, Name: c.Name, DNSNames: c.DNSNames, Cert: c.Cert, Key: c.Key,
			NotAfter: c.NotAfter.UTC().Format(time.RFC3339), ExpiresIn: c.NotAfter.Sub(now).Round(time.Second).Seconds()})
	}
	st := g.certs.Stats()
	answer := map[string]any{
		"listen":          g.cfg.TLS.Listen,
		"certificates":    certs,
		"reloads":         st.Reloads,
		"reload_failures": st.Failures,
		"last_error":      st.LastError,
	}
	if a := g.TLSAddr(); a != nil {
		answer["addr"] = a.String()
	}
	if !st.LastReload.IsZero() {
		answer["last_reload"] = st.LastReload.UTC().Format(time.RFC3339)
	}
	writeJSON(w, http.StatusOK, answer)
}

// tlsState converts the loop's TLSInfo for Request.TLS; nil for nil.
func tlsState(i *loop.TLSInfo) *tls.ConnectionState {
	if i == nil {
		return nil
	}
	return &tls.ConnectionState{
		Version:            i.Version,
		HandshakeComplete:  true,
		DidResume:          i.DidResume,
		CipherSuite:        i.CipherSuite,
		NegotiatedProtocol: i.NegotiatedProtocol,
		ServerName:         i.ServerName,
		PeerCertificates:   i.PeerCertificates,
	}
}
