package gateway_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/upgate/upgate/gateway"
)

// rpc answers every request of a connection on another goroutine: a
// Handler callback must not block its event loop.
type rpc struct{}

func (rpc) OnOpen(c gateway.Conn, r *gateway.Request) {
	// r is a copy: it may be kept, here as the connection's data.
	c.SetData(r.Header.Get("X-User"))
}

func (rpc) OnMessage(c gateway.Conn, op gateway.OpCode, payload []byte) {
	req := append([]byte(nil), payload...) // payload dies when OnMessage returns
	go func() {
		answer := append([]byte(`{"ok":true,"echo":`), req...)
		_ = c.Send(gateway.OpText, append(answer, '}')) // safe from any goroutine
	}()
}

func (rpc) OnClose(c gateway.Conn, code gateway.StatusCode, err error) {}

// A Go program embeds the gateway with its own Handler next to the built-in
// behaviours, publishes to a topic and shuts down gracefully.
func Example() {
	cfg := gateway.Config{
		Listen: "127.0.0.1:8080",
		Admin:  "off",
		Routes: []gateway.Route{
			{Path: "/prices/{topic}", Behaviour: gateway.PubSub},
			{Path: "/rpc", Behaviour: gateway.Custom, Handler: rpc{}, Subprotocols: []string{"rpc.v1"},
				RequireSubprotocol: true, Origins: []string{"https://app.example"}},
		},
		Limits: gateway.Limits{MaxConnections: 50_000, ConnectRate: 500},
	}
	g, err := gateway.New(cfg, gateway.WithLogger(slog.Default()))
	if err != nil {
		panic(err)
	}
	if err := g.Start(); err != nil {
		panic(err)
	}
	// Every subscriber of /prices/eur gets the same encoded frame.
	g.Publish("eur", gateway.OpText, []byte(`{"usd":1.08}`))

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = g.Shutdown(ctx)
}
