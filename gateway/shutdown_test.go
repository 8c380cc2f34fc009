package gateway

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestShutdownClosesEveryConnection(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.Drain = 5 * time.Second
	g, err := New(cfg, WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	const n = 200
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		path := "/echo"
		if i%2 == 1 {
			path = "/ws/t"
		}
		c := dial(t, g, path, nil)
		wg.Go(func() {
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(testTimeout))
			for {
				_, _, err := c.ReadMessage()
				if err == nil {
					continue
				}
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					codes <- ce.Code
				} else {
					codes <- -1
				}
				return
			}
		})
	}
	eventually(t, "every connection registered", func() bool { return g.Connections() == n })

	start := time.Now()
	if err := shutdownNow(g); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	took := time.Since(start)
	wg.Wait()
	close(codes)
	got := 0
	for code := range codes {
		if code != websocket.CloseGoingAway {
			t.Fatalf("a connection ended with %d, want 1001", code)
		}
		got++
	}
	if got != n {
		t.Fatalf("%d connections saw the close, want %d", got, n)
	}
	if took >= cfg.Timeouts.Drain {
		t.Fatalf("Shutdown took %v, over the %v drain budget", took, cfg.Timeouts.Drain)
	}
	select {
	case <-g.Done():
	default:
		t.Fatal("Done not closed after Shutdown")
	}
	if err := shutdownNow(g); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := g.Start(); err != ErrStopped {
		t.Fatalf("Start after Shutdown: %v", err)
	}
	t.Logf("200 connections drained in %v", took)
}

func TestReadyzDuringDrain(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.DrainDelay = 300 * time.Millisecond
	g, err := New(cfg, WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := do(t, "GET", adminURL(g, "/readyz"), nil); status != 200 {
		t.Fatalf("admin /readyz before Shutdown: %d", status)
	}
	c := dial(t, g, "/echo", nil)
	shut := make(chan error, 1)
	go func() { shut <- shutdownNow(g) }()
	eventually(t, "draining", func() bool { return g.draining.Load() })
	if status, _, body := do(t, "GET", publicURL(g, "/readyz"), nil); status != 503 {
		t.Fatalf("/readyz while draining: %d %q, want 503", status, body)
	}
	if status, _, _ := do(t, "GET", adminURL(g, "/readyz"), nil); status != 503 {
		t.Fatalf("admin /readyz while draining: %d, want 503", status)
	}
	if status, _, _ := do(t, "GET", publicURL(g, "/healthz"), nil); status != 200 {
		t.Fatalf("/healthz while draining: %d, want 200", status)
	}
	if v := metric(t, g, "upgate_draining"); v != 1 {
		t.Fatalf("upgate_draining %v", v)
	}
	expectClose(t, c, websocket.CloseGoingAway)
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", g.Addr().String(), time.Second); err == nil {
		t.Fatal("public listener still accepts after Shutdown")
	}
}

func TestShutdownDrainBudget(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.Close = 5 * time.Second
	cfg.Timeouts.Drain = 300 * time.Millisecond
	g, err := New(cfg, WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	dialRaw(t, g, "/echo") // never answers the close frame
	eventually(t, "registration", func() bool { return g.Connections() == 1 })
	start := time.Now()
	if err := shutdownNow(g); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Shutdown took %v with a 300ms drain budget", took)
	}
}

func TestShutdownContext(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.Close = 5 * time.Second
	g, err := New(cfg, WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	dialRaw(t, g, "/echo")
	eventually(t, "registration", func() bool { return g.Connections() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := g.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a short context: %v", err)
	}
	select {
	case <-g.Done():
	case <-time.After(testTimeout):
		t.Fatal("Done not closed after the context ended")
	}
}

func TestShutdownBeforeStart(t *testing.T) {
	g, err := New(testConfig(), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if g.Addr() != nil || g.AdminAddr() != nil {
		t.Fatal("addresses before Start")
	}
	if err := shutdownNow(g); err != nil {
		t.Fatal(err)
	}
	<-g.Done()
	if err := g.Start(); err != ErrStopped {
		t.Fatalf("Start after Shutdown: %v", err)
	}
}

func TestAdminOff(t *testing.T) {
	cfg := testConfig()
	cfg.Admin = "off"
	g := startGateway(t, cfg)
	if g.AdminAddr() != nil {
		t.Fatal("AdminAddr with admin off")
	}
	c := dial(t, g, "/echo", nil)
	_ = c.WriteMessage(websocket.TextMessage, []byte("x"))
	expectMessage(t, c, websocket.TextMessage, []byte("x"))
}
