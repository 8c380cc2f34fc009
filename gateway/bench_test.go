package gateway

import (
	"fmt"
	"testing"

	"github.com/upgate/upgate/internal/wstest"
)

// benchFanout measures a publish to subs subscribers, delivery included: the
// publisher stays at most window publishes ahead of the slowest reader, so
// outbound queues stay small. publish sends the i-th message.
func benchFanout(b *testing.B, loops, subs int, setup func(g *Gateway, fleet []*wstest.Client) func()) {
	cfg := testConfig()
	cfg.Loops = loops
	cfg.Limits.MaxOutbound = 64 << 20
	cfg.Limits.MaxConnections = subs + 10
	g := startGateway(b, cfg)
	got, fleet := subscriberFleet(b, g, "/ws/bench", subs)
	eventually(b, "subscriptions", func() bool { return g.Subscribers("bench") == subs })
	publish := setup(g, fleet)
	const window = 32
	var sent int64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if sent >= window {
			waitFor(b, got, (sent-window)*int64(subs))
		}
		publish()
		sent++
	}
	waitFor(b, got, sent*int64(subs))
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(sent*int64(subs)), "ns/delivery")
}

// BenchmarkPublishFanout1000 publishes 64-byte messages to 1 000
// subscribers with Gateway.Publish (from a goroutine that is not a loop).
func BenchmarkPublishFanout1000(b *testing.B) {
	for _, loops := range []int{1, 2} {
		b.Run(fmt.Sprintf("api/loops=%d", loops), func(b *testing.B) {
			benchFanout(b, loops, 1000, func(g *Gateway, _ []*wstest.Client) func() {
				payload := pattern(64, true)
				return func() {
					if n, _ := g.Publish("bench", OpText, payload); n != 1000 {
						b.Fatalf("delivered %d", n)
					}
				}
			})
		})
		b.Run(fmt.Sprintf("client/loops=%d", loops), func(b *testing.B) {
			benchFanout(b, loops, 1000, func(g *Gateway, fleet []*wstest.Client) func() {
				msg := maskedFrame(1, pattern(64, true))
				return func() {
					if _, err := fleet[0].Conn.Write(msg); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkEchoRoundTrip measures one echo round trip over loopback.
func BenchmarkEchoRoundTrip(b *testing.B) {
	cfg := testConfig()
	cfg.Loops = 1
	g := startGateway(b, cfg)
	rc := dialRaw(b, g, "/echo")
	msg := maskedFrame(2, pattern(128, false))
	buf := make([]byte, 1024)
	b.ReportAllocs()
	b.SetBytes(128)
	for b.Loop() {
		if _, err := rc.Conn.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, _, err := rc.ReadFrameInto(buf); err != nil {
			b.Fatal(err)
		}
	}
}
