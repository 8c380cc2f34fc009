package bus

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// authorize runs one request and waits for its result.
func authorize(t *testing.T, b *Bus, req *AuthRequest) AuthResult {
	t.Helper()
	done := make(chan AuthResult, 1)
	b.Authorize(req, func(r AuthResult) { done <- r })
	select {
	case r := <-done:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no authorisation result in 10s")
	}
	return AuthResult{}
}

func TestAuthorize(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	b := newBus(t, Options{URLs: []string{srv.ClientURL()}, Node: "n1", AuthTimeout: 200 * time.Millisecond}, newFakeLocal())
	eventually(t, "connected", b.Connected)

	// Nobody answers on <prefix>.auth: unavailable at once (no responders).
	start := time.Now()
	if r := authorize(t, b, &AuthRequest{Conn: "n1.1"}); r.Outcome != AuthUnavailable || r.Status != 503 {
		t.Errorf("no responders: %+v", r)
	}
	if time.Since(start) > 150*time.Millisecond {
		t.Errorf("no responders took %v", time.Since(start))
	}

	backend := client(t, srv.ClientURL())
	var mu sync.Mutex
	var seen []AuthRequest
	_, err := backend.Subscribe("upgate.auth", func(m *nats.Msg) {
		var req AuthRequest
		if err := json.Unmarshal(m.Data, &req); err != nil {
			t.Errorf("request %q: %v", m.Data, err)
			return
		}
		mu.Lock()
		seen = append(seen, req)
		mu.Unlock()
		switch req.Query {
		case "token=good":
			_ = m.Respond([]byte(`{"allow":true,"user":"alice","topics":["user.alice","all"]}`))
		case "token=bad":
			_ = m.Respond([]byte(`{"allow":false,"reason":"bad token"}`))
		case "token=none":
			_ = m.Respond([]byte(`{"allow":false,"status":401}`))
		case "token=garbage":
			_ = m.Respond([]byte(`yes please`))
		case "token=slow":
			// no answer
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = backend.Flush()

	req := &AuthRequest{Conn: "n1.2", Node: "n1", Route: "/chat", Path: "/chat", Query: "token=good",
		Headers: map[string][]string{"Authorization": {"Bearer x"}}, Remote: "10.1.2.3:4444", Subprotocol: "v1"}
	r := authorize(t, b, req)
	if !r.Allowed() || r.User != "alice" || len(r.Topics) != 2 || r.Topics[0] != "user.alice" {
		t.Errorf("allowed: %+v", r)
	}
	mu.Lock()
	if len(seen) != 1 || seen[0].Conn != "n1.2" || seen[0].Headers["Authorization"][0] != "Bearer x" || seen[0].Remote != "10.1.2.3:4444" || seen[0].Subprotocol != "v1" {
		t.Errorf("request seen: %+v", seen)
	}
	mu.Unlock()
	for q, want := range map[string]AuthResult{
		"token=bad":     {Outcome: AuthDenied, Status: 403, Reason: "bad token"},
		"token=none":    {Outcome: AuthDenied, Status: 401, Reason: "Not authorised."},
		"token=garbage": {Outcome: AuthInvalid, Status: 502, Reason: "Malformed authorisation reply."},
		"token=slow":    {Outcome: AuthTimeout, Status: 401, Reason: "Authorisation not answered in time."},
	} {
		start := time.Now()
		r := authorize(t, b, &AuthRequest{Conn: "n1.3", Query: q})
		if r.Outcome != want.Outcome || r.Status != want.Status || r.Reason != want.Reason {
			t.Errorf("%s: %+v, want %+v", q, r, want)
		}
		if q == "token=slow" {
			if el := time.Since(start); el < 190*time.Millisecond || el > 2*time.Second {
				t.Errorf("timeout after %v, want about 200ms", el)
			}
		}
	}
	s := b.Stats()
	if s.Auth[AuthAllowed] != 1 || s.Auth[AuthDenied] != 2 || s.Auth[AuthTimeout] != 1 || s.Auth[AuthInvalid] != 1 || s.Auth[AuthUnavailable] != 1 || s.AuthPending != 0 {
		t.Errorf("auth counters %+v pending %d", s.Auth, s.AuthPending)
	}
}

// TestAuthManyPending: a thousand requests wait at once; each gets exactly
// one result, answered ones as answered and the rest at their timeout.
func TestAuthManyPending(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	b := newBus(t, Options{URLs: []string{srv.ClientURL()}, Node: "n1", AuthTimeout: 300 * time.Millisecond}, newFakeLocal())
	backend := client(t, srv.ClientURL())
	var mu sync.Mutex
	var held []*nats.Msg
	_, _ = backend.Subscribe("upgate.auth", func(m *nats.Msg) {
		var req AuthRequest
		_ = json.Unmarshal(m.Data, &req)
		if req.Query == "odd" {
			mu.Lock()
			held = append(held, m) // never answered
			mu.Unlock()
			return
		}
		_ = m.Respond([]byte(`{"allow":true}`))
	})
	_ = backend.Flush()
	eventually(t, "connected", b.Connected)

	const n = 1000
	results := make(chan AuthResult, 2*n)
	for i := range n {
		q := "even"
		if i%2 == 1 {
			q = "odd"
		}
		b.Authorize(&AuthRequest{Conn: "n1.1", Query: q}, func(r AuthResult) { results <- r })
	}
	counts := map[int]int{}
	for range n {
		select {
		case r := <-results:
			counts[r.Outcome]++
		case <-time.After(10 * time.Second):
			t.Fatalf("results so far %v", counts)
		}
	}
	if counts[AuthAllowed] != n/2 || counts[AuthTimeout] != n/2 {
		t.Errorf("outcomes %v", counts)
	}
	// No second result: given a moment to come, none does.
	select {
	case r := <-results:
		t.Errorf("a request finished twice: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	// Late answers to expired requests are received and ignored.
	mu.Lock()
	for _, m := range held {
		_ = m.Respond([]byte(`{"allow":true}`))
	}
	mu.Unlock()
	_ = backend.Flush()
	eventually(t, "the late answers received", func() bool { return b.Stats().In[KindAuth] == n })
	if s := b.Stats(); s.Auth[AuthAllowed] != n/2 || s.AuthPending != 0 {
		t.Errorf("after late answers: %+v pending %d", s.Auth, s.AuthPending)
	}
}
