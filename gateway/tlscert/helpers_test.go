package tlscert

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/upgate/upgate/internal/testcert"
)

// issue returns the PEM certificate and key of l, signed by ca.
func issue(t *testing.T, ca *testcert.CA, l testcert.Leaf) (certPEM, keyPEM []byte) {
	t.Helper()
	c := ca.Issue(t, l)
	return c.CertPEM, c.KeyPEM
}

// pairOf makes a Pair of WritePair's files.
func pairOf(cert, key string) Pair { return Pair{Cert: cert, Key: key} }

// result is the outcome of one handshake.
type result struct {
	serverErr, clientErr error
	cn                   string // the server certificate's common name, as the client saw it
	alpn                 string
	version              uint16
}

// handshake runs a TLS handshake between server and client over net.Pipe,
// then a one-byte exchange so that a client refused after its own
// handshake completed (TLS 1.3 client certificates) sees the refusal.
func handshake(t *testing.T, server, client *tls.Config) result {
	t.Helper()
	sc, cc := net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	sc.SetDeadline(deadline)
	cc.SetDeadline(deadline)
	srv, cli := tls.Server(sc, server), tls.Client(cc, client)
	serr := make(chan error, 1)
	go func() {
		err := srv.Handshake()
		if err == nil {
			_, err = srv.Write([]byte{1})
		}
		serr <- err
		sc.Close() // not srv.Close: both close_notify writes would block on the pipe
	}()
	var r result
	r.clientErr = cli.Handshake()
	if r.clientErr == nil {
		st := cli.ConnectionState()
		r.cn = st.PeerCertificates[0].Subject.CommonName
		r.alpn = st.NegotiatedProtocol
		r.version = st.Version
		_, r.clientErr = cli.Read(make([]byte, 1))
	}
	cc.Close()
	r.serverErr = <-serr
	return r
}
