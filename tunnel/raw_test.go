//go:build linux

package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// readN reads exactly n bytes from c.
func readN(t testing.TB, c net.Conn, n int) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return string(b)
}

func TestRawBothWaysWithPrefix(t *testing.T) {
	r := newReactor(t, Options{Reactors: 1})
	f := newRaw(t, r, []byte("pre:"))
	if _, err := f.client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if got, want := readN(t, f.upstream, 9), "pre:hello"; got != want {
		t.Errorf("upstream got %q; want %q", got, want)
	}
	if _, err := f.upstream.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	if got, want := readN(t, f.client, 5), "world"; got != want {
		t.Errorf("client got %q; want %q", got, want)
	}
	waitFor(t, "BytesAB 9, BytesBA 5", func() bool { return f.tun.BytesAB() == 9 && f.tun.BytesBA() == 5 })
	if got, want := r.Len(), 1; got != want {
		t.Errorf("Len: got %d; want %d", got, want)
	}
	n := 0
	r.Each(func(tu *Tunnel) bool { n++; return tu == f.tun })
	if n != 1 {
		t.Errorf("Each: got %d tunnels; want 1", n)
	}
}

// TestRawHalfClose: the side that finishes writing first still gets the
// other's reply, and the tunnel ends cleanly once both sides are done.
func TestRawHalfClose(t *testing.T) {
	for i, clientFirst := range []bool{true, false} {
		r := newReactor(t, Options{Reactors: 1})
		f := newRaw(t, r, nil)
		first, second := f.client, f.upstream
		if !clientFirst {
			first, second = second, first
		}
		first.Write([]byte("request"))
		first.(*net.TCPConn).CloseWrite()
		second.SetReadDeadline(time.Now().Add(20 * time.Second))
		got, err := io.ReadAll(second)
		if err != nil || string(got) != "request" {
			t.Fatalf("#%d: got %q, %v; want %q, EOF", i, got, err, "request")
		}
		second.Write([]byte("reply"))
		second.(*net.TCPConn).CloseWrite()
		first.SetReadDeadline(time.Now().Add(20 * time.Second))
		got, err = io.ReadAll(first)
		if err != nil || string(got) != "reply" {
			t.Fatalf("#%d: got %q, %v; want %q, EOF", i, got, err, "reply")
		}
		if res := f.wait(t); res.err != nil || res.t != f.tun {
			t.Errorf("#%d: got end %v; want nil", i, res.err)
		}
	}
}

func TestRawUpstreamReset(t *testing.T) {
	r := newReactor(t, Options{Reactors: 1})
	f := newRaw(t, r, nil)
	f.client.Write([]byte("x"))
	readN(t, f.upstream, 1)
	f.upstream.(*net.TCPConn).SetLinger(0)
	f.upstream.Close()
	if res := f.wait(t); res.err == nil {
		t.Errorf("got end nil; want an error")
	}
	f.client.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := f.client.Read(make([]byte, 1)); !isClosed(err) {
		t.Errorf("client read: got %v; want EOF or reset", err)
	}
}

func TestCloseFromAnotherGoroutine(t *testing.T) {
	r := newReactor(t, Options{Reactors: 1})
	f := newRaw(t, r, nil)
	go f.tun.Close()
	if res := f.wait(t); !errors.Is(res.err, ErrClosed) {
		t.Errorf("got end %v; want %v", res.err, ErrClosed)
	}
	f.client.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := f.client.Read(make([]byte, 1)); !isClosed(err) {
		t.Errorf("client read: got %v; want EOF", err)
	}
	f.tun.Close() // again: nothing
	waitFor(t, "Len 0", func() bool { return r.Len() == 0 })
}

func TestIdleTimeout(t *testing.T) {
	r := newReactor(t, Options{Reactors: 1, IdleTimeout: 100 * time.Millisecond})
	f := newRaw(t, r, nil)
	start := time.Now()
	if res := f.wait(t); !errors.Is(res.err, ErrIdleTimeout) {
		t.Errorf("got end %v; want %v", res.err, ErrIdleTimeout)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("ended after %v; want at least 100ms", d)
	}
}

func TestDrainTimeout(t *testing.T) {
	r := newReactor(t, Options{Reactors: 1, DrainTimeout: 100 * time.Millisecond})
	f := newRaw(t, r, nil)
	f.client.(*net.TCPConn).CloseWrite()
	if res := f.wait(t); !errors.Is(res.err, ErrDrainTimeout) {
		t.Errorf("got end %v; want %v", res.err, ErrDrainTimeout)
	}
}

func TestShutdownWithTunnelsOpen(t *testing.T) {
	r, err := New(Options{Reactors: 2})
	if err != nil {
		t.Fatal(err)
	}
	var fs []*fixture
	for range 6 {
		fs = append(fs, newRaw(t, r, nil))
	}
	waitFor(t, "6 tunnels", func() bool { return r.Len() == 6 })
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i, f := range fs {
		select {
		case res := <-f.ended:
			if !errors.Is(res.err, ErrShutdown) {
				t.Errorf("#%d: got end %v; want %v", i, res.err, ErrShutdown)
			}
		default:
			t.Errorf("#%d: onEnd had not run when Shutdown returned", i)
		}
	}
	if got := r.Len(); got != 0 {
		t.Errorf("Len: got %d; want 0", got)
	}
	a, b := 0, 0
	if _, err := r.Splice(a, b, nil, Raw, nil); err == nil {
		t.Errorf("Splice after Shutdown: got nil error")
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestNewOptions(t *testing.T) {
	for i, c := range []struct {
		o  Options
		ok bool
	}{
		{Options{}, true},
		{Options{PipeSize: 100}, false},
		{Options{PipeSize: MaxPipeSize + 1}, false},
		{Options{BufferSize: 100}, false},
		{Options{BufferSize: MaxPipeSize + 1}, false},
		{Options{PipeSize: MinPipeSize, BufferSize: MaxPipeSize}, true},
		{Options{Reactors: -1}, false},
		{Options{IdleTimeout: -1}, false},
		{Options{DrainTimeout: -1}, false},
		{Options{MaxPipes: -1}, false},
	} {
		_, err := c.o.normalize()
		if got := err == nil; got != c.ok {
			t.Errorf("#%d: got err %v; want ok %v", i, err, c.ok)
		}
	}
}
