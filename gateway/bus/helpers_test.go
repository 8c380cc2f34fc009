package bus

import (
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/upgate/upgate/internal/testutil"
)

// testLogger discards log lines unless UPGATE_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("UPGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newBus starts a bus with o, closed when t ends.
func newBus(t testing.TB, o Options, l Local) *Bus {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger()
	}
	b, err := New(o, l)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(2 * time.Second) })
	return b
}

// client connects a backend to url, closed when t ends.
func client(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// eventually is testutil.Eventually: it waits up to 10 s for cond.
var eventually = testutil.Eventually

// delivery is one call of fakeLocal.
type delivery struct {
	kind   string // "deliver", "disconnect", "fanout"
	n      uint64
	topic  string
	op     OpCode
	data   string
	code   uint16
	reason string
}

// fakeLocal stands for the gateway: open connection numbers and topics with
// a number of subscribers; every call is recorded and sent on ch.
type fakeLocal struct {
	mu      sync.Mutex
	open    map[uint64]error // nil: open; else the error Deliver returns
	subs    map[string]int
	calls   []delivery
	ch      chan delivery
	blockCh chan struct{} // when set, Fanout waits for it
}

func newFakeLocal() *fakeLocal {
	return &fakeLocal{open: map[uint64]error{}, subs: map[string]int{}, ch: make(chan delivery, 1<<16)}
}

func (f *fakeLocal) record(d delivery) {
	f.mu.Lock()
	f.calls = append(f.calls, d)
	f.mu.Unlock()
	f.ch <- d
}

func (f *fakeLocal) Deliver(n uint64, op OpCode, p []byte) error {
	f.mu.Lock()
	err, ok := f.open[n]
	f.mu.Unlock()
	if !ok {
		return ErrUnknownConn
	}
	if err == nil {
		f.record(delivery{kind: "deliver", n: n, op: op, data: string(p)})
	}
	return err
}

func (f *fakeLocal) Disconnect(n uint64, code uint16, reason string) error {
	f.mu.Lock()
	err, ok := f.open[n]
	f.mu.Unlock()
	if !ok {
		return ErrUnknownConn
	}
	if err == nil {
		f.record(delivery{kind: "disconnect", n: n, code: code, reason: reason})
	}
	return err
}

func (f *fakeLocal) Fanout(topic string, op OpCode, p []byte) (int, error) {
	if f.blockCh != nil {
		<-f.blockCh
	}
	f.mu.Lock()
	n := f.subs[topic]
	f.mu.Unlock()
	if n > 0 {
		f.record(delivery{kind: "fanout", topic: topic, op: op, data: string(p)})
	}
	return n, nil
}

func (f *fakeLocal) setOpen(n uint64, err error) {
	f.mu.Lock()
	f.open[n] = err
	f.mu.Unlock()
}

func (f *fakeLocal) setSubs(topic string, n int) {
	f.mu.Lock()
	f.subs[topic] = n
	f.mu.Unlock()
}

// next waits for the next call.
func (f *fakeLocal) next(t testing.TB) delivery {
	t.Helper()
	select {
	case d := <-f.ch:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery in 10s")
	}
	return delivery{}
}

// none checks that no call comes for a while.
func (f *fakeLocal) none(t testing.TB, wait time.Duration) {
	t.Helper()
	select {
	case d := <-f.ch:
		t.Fatalf("unexpected delivery %+v", d)
	case <-time.After(wait):
	}
}

// nextMsg waits for a message on a synchronous subscription.
func nextMsg(t testing.TB, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("waiting on %s: %v", sub.Subject, err)
	}
	return m
}
