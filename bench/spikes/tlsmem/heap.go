package main

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync"
	"unsafe"
)

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func gc2() { runtime.GC(); runtime.GC() }

func writeProf(path string) {
	f, err := os.Create(path)
	if err != nil {
		panic(err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		panic(err)
	}
	f.Close()
}

// keyLog collects traffic secrets keyed by client random.
type keyLog struct {
	mu sync.Mutex
	m  map[string][2][]byte // [client, server] application traffic secret 0
}

func (k *keyLog) Write(p []byte) (int, error) {
	f := strings.Fields(string(p))
	if len(f) != 3 {
		return len(p), nil
	}
	idx := -1
	switch f[0] {
	case "CLIENT_TRAFFIC_SECRET_0":
		idx = 0
	case "SERVER_TRAFFIC_SECRET_0":
		idx = 1
	}
	if idx < 0 {
		return len(p), nil
	}
	sec, _ := hex.DecodeString(f[2])
	k.mu.Lock()
	e := k.m[f[1]]
	e[idx] = sec
	k.m[f[1]] = e
	k.mu.Unlock()
	return len(p), nil
}

func (k *keyLog) take(random []byte) [2][]byte {
	key := hex.EncodeToString(random)
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.m[key]
	delete(k.m, key)
	return e
}

type recState struct {
	rd, wr *half
}

type heapCase struct {
	name       string
	curves     []tls.CurveID // client CurvePreferences (nil = default)
	recSize    int           // first application record size
	noTickets  bool
	handoff    bool
	lazy       bool // hand-off: keep only keys, drop AEAD objects while idle
	dynOff     bool // client DynamicRecordSizingDisabled (full 16 KiB records)
	recLimit   bool // transport hands tls.Conn at most one record per Read
	srvX25519  bool // server CurvePreferences=[X25519]
	pipelined  bool // hand-off: client sends app data right behind its Finished
	noRecLimit bool // hand-off without record-boundary reads (negative control)
	callCS     bool // call ConnectionState after the read
}

func runHeapCase(hc heapCase, n int, prof string) {
	cert := selfSigned()
	kl := &keyLog{m: map[string][2][]byte{}}
	scfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13,
		SessionTicketsDisabled: hc.noTickets}
	if hc.handoff {
		scfg.KeyLogWriter = kl
	}
	if hc.srvX25519 {
		scfg.CurvePreferences = []tls.CurveID{tls.X25519}
	}
	// nopCache makes the Go client advertise psk_key_exchange_modes (as
	// browsers do), so the server issues a NewSessionTicket, without resuming.
	ccfg := &tls.Config{InsecureSkipVerify: true, ServerName: "example.test", CurvePreferences: hc.curves,
		ClientSessionCache: nopCache{}, DynamicRecordSizingDisabled: hc.dynOff}
	payload := bytes.Repeat([]byte{'x'}, hc.recSize)
	reply := []byte("pong from own record layer")

	// warm up once so lazily-initialised globals are not counted
	for range 2 {
		doOne(scfg, ccfg, payload, reply, hc, kl)
	}
	servers := make([]*tls.Conn, n)
	states := make([]*recState, n)
	var curve tls.CurveID
	var suite uint16
	var wrSeqs = map[uint64]int{}
	gc2()
	if prof != "" {
		writeProf(prof + ".before.pb.gz")
		gc2() // drop the profile writer's garbage before measuring
	}
	debug.FreeOSMemory()
	before := heapObjects()
	rssBefore := vmRSS()
	for i := range n {
		srv, st, cs := doOne(scfg, ccfg, payload, reply, hc, kl)
		servers[i], states[i] = srv, st
		curve, suite = cs.CurveID, cs.CipherSuite
		if st != nil {
			wrSeqs[st.wr.seq-1]++
		}
	}
	gc2()
	after := heapObjects()
	debug.FreeOSMemory()
	rssAfter := vmRSS()
	if prof != "" {
		writeProf(prof + ".after.pb.gz")
	}
	per := float64(after-before) / float64(n)
	extra := ""
	if hc.handoff {
		extra = fmt.Sprintf(" serverWriteSeqAtHandoff=%v", wrSeqs)
	}
	fmt.Printf("%-34s N=%d curve=%v suite=%s  heap/conn=%.0f B  RSS/conn(after FreeOSMemory)=%.0f B%s\n", hc.name, n, curve,
		tls.CipherSuiteName(suite), per, float64(int64(rssAfter)-int64(rssBefore))/float64(n), extra)
	runtime.KeepAlive(servers)
	runtime.KeepAlive(states)
}

// doOne runs one handshake over an in-memory pipe, feeds one application
// record from the "event loop", and drops every client-side reference.
func doOne(scfg, ccfg *tls.Config, payload, reply []byte, hc heapCase, kl *keyLog) (*tls.Conn, *recState, tls.ConnectionState) {
	sc, cc := newPair()
	if hc.handoff {
		sc.recLimit, sc.capture, sc.tee = true, true, true
	}
	if hc.recLimit {
		sc.recLimit = true
	}
	if hc.noRecLimit {
		sc.recLimit = false
	}
	srv := tls.Server(sc, scfg)
	cli := tls.Client(cc, ccfg)
	errc := make(chan error, 1)
	if hc.pipelined {
		// Hold the server after it has read the ClientHello until the client has
		// written Finished *and* its first application record.
		sc.gate, sc.gateAfter = make(chan struct{}), 1
		if hc.noRecLimit {
			sc.recLimit, sc.gateAfter = true, 1 // count the ClientHello record, then stop limiting
		}
		go func() {
			err := cli.Handshake()
			if err == nil {
				_, err = cli.Write(payload)
			}
			if hc.noRecLimit {
				sc.mu.Lock()
				sc.recLimit = false
				sc.mu.Unlock()
			}
			close(sc.gate)
			errc <- err
		}()
	} else {
		go func() { errc <- cli.Handshake() }()
	}
	if err := srv.Handshake(); err != nil {
		panic(err)
	}
	if err := <-errc; err != nil {
		panic(err)
	}
	sc.setBlocking(false) // from here on the "event loop" drives the server
	cs := srv.ConnectionState()

	if !hc.handoff {
		if _, err := cli.Write(payload); err != nil {
			panic(err)
		}
		buf := make([]byte, 32<<10)
		got := 0
		for got < len(payload) {
			m, err := srv.Read(buf)
			if err != nil {
				panic(err)
			}
			got += m
		}
		if _, err := srv.Read(buf); !errors.As(err, new(wouldBlock)) {
			panic(fmt.Sprint("expected would-block, got ", err))
		}
		if hc.callCS {
			_ = srv.ConnectionState()
		}
		// drop client side and transport buffers
		sc.mu.Lock()
		sc.peer, sc.out, sc.in = nil, nil, nil
		sc.mu.Unlock()
		cc.peer = nil
		return srv, nil, cs
	}

	// Hand-off: take the traffic secrets from the key log, then drop the tls.Conn.
	sc.mu.Lock()
	random := append([]byte{}, sc.head[11:43]...)
	serverOut := sc.out
	sc.out, sc.tee = nil, false
	sc.mu.Unlock()
	sec := kl.take(random)
	if sec[0] == nil || sec[1] == nil {
		panic("secrets not logged")
	}
	st := &recState{rd: newHalf(cs.CipherSuite, sec[0]), wr: newHalf(cs.CipherSuite, sec[1])}
	// The server may already have written records under the application
	// key (NewSessionTicket). Count them by trial decryption.
	recs, _ := splitRecords(serverOut)
	for _, r := range recs {
		if r[0] == 23 {
			if _, _, err := st.wr.open(r); err == nil {
				// seq advanced inside open
			}
		}
	}
	srv = nil
	// Client sends application data; the loop decrypts it with its own state.
	if !hc.pipelined {
		if _, err := cli.Write(payload); err != nil {
			panic(err)
		}
	}
	in := sc.take()
	got := 0
	rs, rest := splitRecords(in)
	if len(rest) != 0 {
		panic("partial record")
	}
	for _, r := range rs {
		typ, data, err := st.rd.open(r)
		if err != nil {
			panic(fmt.Sprint("open: ", err))
		}
		if typ != 23 {
			panic(fmt.Sprint("unexpected type ", typ))
		}
		got += len(data)
	}
	if got != len(payload) {
		panic("short")
	}
	// Reply with our own record layer; the crypto/tls client must accept it.
	cc.push(st.wr.seal(nil, 23, reply))
	buf := make([]byte, 256)
	m, err := cli.Read(buf)
	if err != nil || !bytes.Equal(buf[:m], reply) {
		panic(fmt.Sprint("client read: ", m, err))
	}
	cc.peer, sc.peer = nil, nil
	if hc.lazy {
		st.rd.aead, st.wr.aead = nil, nil
	}
	return nil, st, cs
}

func printSizes() {
	fmt.Printf("unsafe.Sizeof(tls.Conn{})=%d  unsafe.Sizeof(memConn{})=%d\n",
		unsafe.Sizeof(tls.Conn{}), unsafe.Sizeof(memConn{}))
}

type nopCache struct{}

func (nopCache) Get(string) (*tls.ClientSessionState, bool) { return nil, false }
func (nopCache) Put(string, *tls.ClientSessionState)        {}

func aeadSizes() {
	key16 := make([]byte, 16)
	key32 := make([]byte, 32)
	const n = 10000
	keep := make([]any, n)
	for _, c := range []struct {
		name string
		f    func() any
	}{
		{"cipher.NewGCM(aes.NewCipher(16B key))", func() any { return newAEAD(tls.TLS_AES_128_GCM_SHA256, key16) }},
		{"chacha20poly1305.New(32B key)", func() any { return newAEAD(tls.TLS_CHACHA20_POLY1305_SHA256, key32) }},
	} {
		gc2()
		b := heapObjects()
		for i := range keep {
			keep[i] = c.f()
		}
		gc2()
		fmt.Printf("%-40s %.0f B/object\n", c.name, float64(heapObjects()-b)/n)
		clear(keep)
	}
}
