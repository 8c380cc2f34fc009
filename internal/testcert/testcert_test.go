package testcert

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"os"
	"testing"
	"time"
)

// TestVerify checks names, validity and usage against crypto/x509.
func TestVerify(t *testing.T) {
	ca := NewCA(t, "test CA")
	now := time.Now()
	for i, c := range []struct {
		leaf  Leaf
		name  string // DNS name or IP to verify
		usage x509.ExtKeyUsage
		ok    bool
	}{
		{Leaf{Names: []string{"example.test", "127.0.0.1"}}, "example.test", x509.ExtKeyUsageServerAuth, true},
		{Leaf{Names: []string{"example.test", "127.0.0.1"}}, "127.0.0.1", x509.ExtKeyUsageServerAuth, true},
		{Leaf{Names: []string{"::1"}}, "::1", x509.ExtKeyUsageServerAuth, true},
		{Leaf{Names: []string{"example.test"}}, "other.test", x509.ExtKeyUsageServerAuth, false},
		{Leaf{Names: []string{"example.test"}, NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)}, "example.test", x509.ExtKeyUsageServerAuth, false},
		{Leaf{Names: []string{"example.test"}, NotBefore: now.Add(time.Hour)}, "example.test", x509.ExtKeyUsageServerAuth, false},
		{Leaf{Names: []string{"client"}, Client: true}, "", x509.ExtKeyUsageClientAuth, true},
		{Leaf{Names: []string{"client"}, Client: true}, "", x509.ExtKeyUsageServerAuth, false},
		{Leaf{Names: []string{"example.test"}, RSA: true}, "example.test", x509.ExtKeyUsageServerAuth, true},
	} {
		leaf := ca.Issue(t, c.leaf)
		_, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: c.name, Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{c.usage}})
		if (err == nil) != c.ok {
			t.Errorf("#%d: got %v; want verified: %v", i, err, c.ok)
		}
	}
}

// TestSPKIHash compares with the hash of the public key marshalled anew.
func TestSPKIHash(t *testing.T) {
	_, leaf := Localhost(t)
	der, err := x509.MarshalPKIXPublicKey(leaf.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	if got, want := leaf.SPKIHash(), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		t.Fatalf("got %s; want %s", got, want)
	}
}

// TestFilesAndMutualTLS loads the written files and runs a handshake with
// a client certificate over a pipe.
func TestFilesAndMutualTLS(t *testing.T) {
	ca, leaf := Localhost(t)
	certFile, keyFile := leaf.WriteFiles(t, "", "server")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: got %v, %v; want mode 0600", fi, err)
	}
	caPEM, err := os.ReadFile(ca.WriteFile(t, "", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("the CA file holds no certificate")
	}
	client := ca.Issue(t, Leaf{Names: []string{"client"}, Client: true})
	srvCfg := &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	cliCfg := &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{client.TLS}}
	sc, cc := net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	_ = sc.SetDeadline(deadline)
	_ = cc.SetDeadline(deadline)
	srv := tls.Server(sc, srvCfg)
	done := make(chan error, 1)
	go func() { done <- srv.Handshake() }()
	cli := tls.Client(cc, cliCfg)
	if err := cli.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	if got := srv.ConnectionState().PeerCertificates[0].Subject.CommonName; got != "client" {
		t.Fatalf("client certificate: got %q; want %q", got, "client")
	}
	_ = sc.Close()
	_ = cc.Close()

	// Without a client certificate the server refuses.
	sc, cc = net.Pipe()
	_ = sc.SetDeadline(deadline)
	_ = cc.SetDeadline(deadline)
	srv = tls.Server(sc, srvCfg)
	go func() { done <- srv.Handshake(); _ = sc.Close() }()
	cli = tls.Client(cc, ca.ClientConfig("localhost"))
	_ = cli.Handshake()
	_, _ = cli.Read(make([]byte, 1)) // TLS 1.3: the refusal comes after the client's Finished
	if err := <-done; err == nil {
		t.Fatalf("server handshake without a client certificate: got %v; want an error", err)
	}
	_ = cc.Close()
}
