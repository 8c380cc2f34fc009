package tlscert

import (
	"crypto/tls"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/upgate/upgate/internal/testcert"
)

func TestReload(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	dir := t.TempDir()
	pair := pairOf(ca.WritePair(t, dir, "server", testcert.Leaf{CommonName: "v1", Names: []string{"server.test"}}))
	s, err := New(Options{Pairs: []Pair{pair}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.TLSConfig()
	serves := func(step, want string) {
		t.Helper()
		r := handshake(t, cfg, client("server.test"))
		if r.serverErr != nil || r.clientErr != nil || r.cn != want {
			t.Fatalf("%s: got certificate %q, errors %v, %v; want %q", step, r.cn, r.serverErr, r.clientErr, want)
		}
	}
	serves("first load", "v1")
	v1 := s.Certificates()[0]

	// A good new pair is served to the next handshake.
	c2, k2 := issue(t, ca, testcert.Leaf{CommonName: "v2", Names: []string{"server.test", "v2.test"}, NotAfter: time.Now().Add(48 * time.Hour)})
	testcert.Write(t, dir, "server.pem", c2)
	testcert.Write(t, dir, "server.key", k2)
	if err := s.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	serves("after a good reload", "v2")
	v2 := s.Certificates()[0]
	if !v2.NotAfter.After(v1.NotAfter) || v2.Name != "server.test" || len(v2.DNSNames) != 2 {
		t.Errorf("info after reload: got %+v; want the new certificate's (old %+v)", v2, v1)
	}

	// Bad reloads keep v2 and say which file and why.
	c3, k3 := issue(t, ca, testcert.Leaf{CommonName: "v3", Names: []string{"server.test"}})
	cases := []struct {
		name      string
		cert, key []byte // nil: remove the file
		file      string
		want      string
	}{
		{"garbage certificate", []byte("oops"), k2, pair.Cert, "no PEM CERTIFICATE block"},
		{"new certificate, old key", c3, k2, pair.Key, "does not match the certificate in " + pair.Cert},
		{"key removed", c2, nil, pair.Key, "no such file"},
		{"truncated key", c3, k3[:len(k3)/2], pair.Key, "PEM data"},
	}
	for i, c := range cases {
		testcert.Write(t, dir, "server.pem", c.cert)
		if c.key == nil {
			os.Remove(pair.Key)
		} else {
			testcert.Write(t, dir, "server.key", c.key)
		}
		err := s.Reload()
		var fe *FileError
		if !errors.As(err, &fe) || fe.Path != c.file || !strings.Contains(err.Error(), c.want) {
			t.Errorf("#%d: %s: got %v; want an error naming %s, containing %q", i, c.name, err, c.file, c.want)
		}
		serves(c.name, "v2")
		if st := s.Stats(); st.LastError != err.Error() {
			t.Errorf("#%d: %s: got LastError %q; want %q", i, c.name, st.LastError, err)
		}
	}
	st := s.Stats()
	if st.Reloads != 5 || st.Failures != 4 || st.LastSuccess.After(st.LastReload) {
		t.Errorf("stats: got %+v; want 5 reloads, 4 failures, the last success before the last attempt", st)
	}

	// Repaired, it serves the new pair and clears the error.
	testcert.Write(t, dir, "server.pem", c3)
	testcert.Write(t, dir, "server.key", k3)
	if err := s.Reload(); err != nil {
		t.Fatalf("repaired: %v", err)
	}
	serves("repaired", "v3")
	if st := s.Stats(); st.LastError != "" || st.Failures != 4 || st.Reloads != 6 {
		t.Errorf("stats after repair: got %+v; want no error, 6 reloads, 4 failures", st)
	}
}

func TestReloadClientCA(t *testing.T) {
	ca1, ca2 := testcert.NewCA(t, "CA 1"), testcert.NewCA(t, "CA 2")
	dir := t.TempDir()
	pair := pairOf(ca1.WritePair(t, dir, "server", testcert.Leaf{CommonName: "server", Names: []string{"server.test"}}))
	caFile := testcert.Write(t, dir, "clients.pem", ca1.PEM)
	s, err := New(Options{Pairs: []Pair{pair}, ClientCA: caFile})
	if err != nil {
		t.Fatal(err)
	}
	alice := ca1.Certificate(t, testcert.Leaf{Client: true, CommonName: "alice"})
	bob := ca2.Certificate(t, testcert.Leaf{Client: true, CommonName: "bob"})
	accepted := func(c tls.Certificate) bool {
		cc := client("server.test")
		cc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
		return handshake(t, s.TLSConfig(), cc).serverErr == nil
	}
	if !accepted(alice) || accepted(bob) {
		t.Fatalf("before the reload: got alice %v, bob %v; want CA 1's alice only", accepted(alice), accepted(bob))
	}
	testcert.Write(t, dir, "clients.pem", ca2.PEM)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if accepted(alice) || !accepted(bob) {
		t.Errorf("after the reload: got alice %v, bob %v; want CA 2's bob only", accepted(alice), accepted(bob))
	}
}

func TestWatch(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	dir := t.TempDir()
	pair := pairOf(ca.WritePair(t, dir, "server", testcert.Leaf{CommonName: "v1", Names: []string{"server.test"}}))
	s, err := New(Options{Pairs: []Pair{pair}})
	if err != nil {
		t.Fatal(err)
	}
	if tried, err := s.Check(); tried || err != nil {
		t.Fatalf("check with no change: got %v, %v; want no attempt", tried, err)
	}
	results := make(chan error, 16)
	stop := s.Watch(time.Millisecond, func(err error) { results <- err })
	defer stop()
	wait := func(step string) error {
		t.Helper()
		select {
		case err := <-results:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no reload", step)
			return nil
		}
	}

	// A certificate and key replaced by renaming new files over them (a
	// new inode, as a renewal tool writes them).
	c2, k2 := issue(t, ca, testcert.Leaf{CommonName: "v2", Names: []string{"server.test"}})
	k2file := testcert.Write(t, dir, "new.key", k2)
	c2file := testcert.Write(t, dir, "new.pem", c2)
	if err := os.Rename(k2file, pair.Key); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(c2file, pair.Cert); err != nil {
		t.Fatal(err)
	}
	for {
		if err := wait("renamed pair"); err == nil && s.Certificates()[0].Name == "server.test" {
			if r := handshake(t, s.TLSConfig(), client("server.test")); r.cn == "v2" {
				break
			}
		}
	}

	// A broken key: one failed attempt, not repeated while nothing changes.
	before := s.Stats()
	// Renamed into place, so that the watcher cannot see the file half
	// written (empty, then "broken": two changes, two attempts).
	if err := os.Rename(testcert.Write(t, dir, "broken.key", []byte("broken")), pair.Key); err != nil {
		t.Fatal(err)
	}
	if err := wait("broken key"); err == nil {
		t.Fatalf("broken key: got no error")
	}
	if tried, _ := s.Check(); tried {
		t.Errorf("broken key unchanged: got another attempt; want none")
	}
	if st := s.Stats(); st.Failures != before.Failures+1 {
		t.Errorf("broken key: got %d failures; want %d", st.Failures, before.Failures+1)
	}
	if r := handshake(t, s.TLSConfig(), client("server.test")); r.cn != "v2" {
		t.Errorf("broken key: got certificate %q; want v2 still", r.cn)
	}
	stop()
	stop() // idempotent
}

func TestCertificatesInfo(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	dir := t.TempDir()
	expiry := time.Now().Add(72 * time.Hour).Truncate(time.Second)
	pairs := []Pair{
		pairOf(ca.WritePair(t, dir, "a", testcert.Leaf{CommonName: "a", Names: []string{"a.test", "*.a.test"}, NotAfter: expiry})),
		pairOf(ca.WritePair(t, dir, "b", testcert.Leaf{CommonName: "b-cn"})),
		pairOf(ca.WritePair(t, dir, "c", testcert.Leaf{})),
	}
	s, err := New(Options{Pairs: pairs})
	if err != nil {
		t.Fatal(err)
	}
	infos := s.Certificates()
	want := []string{"a.test", "b-cn", "c.pem"}
	for i, info := range infos {
		if info.Name != want[i] || info.Index != i || info.Cert != pairs[i].Cert || info.Key != pairs[i].Key {
			t.Errorf("#%d: got %+v; want name %s, index %d, files %+v", i, info, want[i], i, pairs[i])
		}
	}
	if !infos[0].NotAfter.Equal(expiry) {
		t.Errorf("NotAfter: got %v; want %v", infos[0].NotAfter, expiry)
	}
	infos[0].Name = "changed"
	if s.Certificates()[0].Name != "a.test" {
		t.Errorf("Certificates returned the Store's own slice")
	}
}
