package bus

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// AuthRequest is the JSON body of a request on <prefix>.auth: what the
// gateway knows of a WebSocket handshake on a route that asks for
// authorisation. The reply is an AuthReply.
type AuthRequest struct {
	Conn        string              `json:"conn"`  // fleet-wide id the connection will have
	Node        string              `json:"node"`  // this node's id
	Route       string              `json:"route"` // configured path of the route
	Path        string              `json:"path"`  // request path, still percent-encoded
	Query       string              `json:"query"` // raw query without '?'
	Topic       string              `json:"topic,omitempty"`
	Headers     map[string][]string `json:"headers,omitempty"` // the selected header fields, canonical names
	Remote      string              `json:"remote"`            // client address, host:port
	Subprotocol string              `json:"subprotocol,omitempty"`
}

// AuthReply is the JSON body of the reply to an AuthRequest.
type AuthReply struct {
	// Allow completes the handshake; false refuses it.
	Allow bool `json:"allow"`
	// User is the user id given to the connection: it is sent with its
	// bridged messages and events (HeaderUser).
	User string `json:"user,omitempty"`
	// Topics are topics the connection joins besides its route's.
	Topics []string `json:"topics,omitempty"`
	// Status of a refusal: 401 or 403 (the default).
	Status int `json:"status,omitempty"`
	// Reason is the body of a refusal.
	Reason string `json:"reason,omitempty"`
}

// AuthResult is the outcome of Authorize.
type AuthResult struct {
	Outcome int    // AuthAllowed, AuthDenied, ...
	Status  int    // the HTTP status of a refusal (401, 403, 502, 503)
	Reason  string // the body of a refusal
	User    string
	Topics  []string
}

// Allowed reports whether the handshake may complete.
func (r AuthResult) Allowed() bool { return r.Outcome == AuthAllowed }

// authMux multiplexes authorisation requests over one reply subscription
// (<inbox>.<token>) and expires them after Options.AuthTimeout, with one
// goroutine for every request, not one per request.
type authMux struct {
	b       *Bus
	mu      sync.Mutex
	next    uint64
	pending map[uint64]*authCall
	order   []authDeadline // by deadline: every request has the same timeout
	inbox   string         // "_INBOX.<nuid>."
	sub     *nats.Subscription
	kick    chan struct{}
}

type authCall struct {
	done func(AuthResult)
}

type authDeadline struct {
	token uint64
	at    time.Time
}

func (a *authMux) init(b *Bus) {
	a.b = b
	a.pending = map[uint64]*authCall{}
	a.kick = make(chan struct{}, 1)
}

func (a *authMux) start(nc *nats.Conn) error {
	a.inbox = nc.NewInbox() + "."
	sub, err := nc.Subscribe(a.inbox+"*", a.onReply)
	if err != nil {
		return err
	}
	a.sub = sub
	return nil
}

// Authorize asks <prefix>.auth whether the handshake described by req may
// complete, and calls done once with the result: on a bus goroutine, or
// before Authorize returns when the bus is not connected. It never blocks.
func (b *Bus) Authorize(req *AuthRequest, done func(AuthResult)) {
	if !b.Connected() || b.stopped.Load() {
		b.stats.auth[AuthUnavailable].Add(1)
		done(AuthResult{Outcome: AuthUnavailable, Status: 503, Reason: "Authorisation service unreachable."})
		return
	}
	data, _ := json.Marshal(req)
	a := &b.auth
	a.mu.Lock()
	a.next++
	token := a.next
	a.pending[token] = &authCall{done: done}
	first := len(a.order) == 0
	a.order = append(a.order, authDeadline{token, time.Now().Add(b.opts.AuthTimeout)})
	a.mu.Unlock()
	if first {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
	m := &nats.Msg{Subject: b.subj.Auth(), Reply: a.inbox + strconv.FormatUint(token, 10), Data: data}
	if b.enqueue(outMsg{kind: KindAuth, m: m, token: token}) != nil {
		a.finish(token, AuthResult{Outcome: AuthUnavailable, Status: 503, Reason: "Authorisation service unreachable."})
	}
}

// finish completes the request token, once; later calls do nothing.
func (a *authMux) finish(token uint64, r AuthResult) {
	a.mu.Lock()
	c := a.pending[token]
	delete(a.pending, token)
	a.mu.Unlock()
	if c == nil {
		return
	}
	a.b.stats.auth[r.Outcome].Add(1)
	c.done(r)
}

// onReply handles a reply on the inbox.
func (a *authMux) onReply(m *nats.Msg) {
	a.b.stats.in[KindAuth].Add(1)
	token, err := strconv.ParseUint(strings.TrimPrefix(m.Subject, a.inbox), 10, 64)
	if err != nil {
		return
	}
	a.finish(token, parseReply(m))
}

// parseReply turns a reply into a result.
func parseReply(m *nats.Msg) AuthResult {
	if len(m.Data) == 0 {
		if s, _ := get(m.Header, "Status"); s == "503" {
			return AuthResult{Outcome: AuthUnavailable, Status: 503, Reason: "No authorisation service."}
		}
	}
	var r AuthReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return AuthResult{Outcome: AuthInvalid, Status: 502, Reason: "Malformed authorisation reply."}
	}
	if r.Allow {
		return AuthResult{Outcome: AuthAllowed, User: r.User, Topics: r.Topics}
	}
	status := r.Status
	if status != 401 {
		status = 403
	}
	reason := r.Reason
	if reason == "" {
		reason = "Not authorised."
	}
	return AuthResult{Outcome: AuthDenied, Status: status, Reason: reason}
}

// expire ends requests whose timeout passed.
func (a *authMux) expire() {
	defer a.b.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		a.mu.Lock()
		now := time.Now()
		var due []uint64
		i := 0
		for ; i < len(a.order); i++ {
			d := a.order[i]
			if _, ok := a.pending[d.token]; !ok {
				continue // answered
			}
			if d.at.After(now) {
				break
			}
			due = append(due, d.token)
		}
		a.order = a.order[i:]
		if len(a.order) == 0 {
			a.order = nil
		}
		wait := time.Hour
		if len(a.order) > 0 {
			wait = a.order[0].at.Sub(now)
		}
		a.mu.Unlock()
		for _, tok := range due {
			a.finish(tok, AuthResult{Outcome: AuthTimeout, Status: 401, Reason: "Authorisation not answered in time."})
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-a.kick:
		case <-a.b.stop:
			return
		}
	}
}

// closeAll ends every pending request as unavailable (the bus is closing).
func (a *authMux) closeAll() {
	a.mu.Lock()
	tokens := make([]uint64, 0, len(a.pending))
	for t := range a.pending {
		tokens = append(tokens, t)
	}
	a.mu.Unlock()
	for _, t := range tokens {
		a.finish(t, AuthResult{Outcome: AuthUnavailable, Status: 503, Reason: "The server is shutting down."})
	}
}

func (a *authMux) pendingCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending)
}
