package bus

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/upgate/upgate/internal/repeatlog"
)

// Local is the gateway seen from the bus: how messages that arrive on the
// bus reach this node's connections. Its methods are called on the bus's
// own goroutines (never on an event loop) and must not block for long.
type Local interface {
	// Deliver sends one message to this node's connection n. It returns
	// ErrUnknownConn, ErrConnClosed or ErrSlowConsumer when it could not.
	Deliver(n uint64, op OpCode, payload []byte) error
	// Disconnect starts closing this node's connection n with code and
	// reason. Errors as for Deliver.
	Disconnect(n uint64, code uint16, reason string) error
	// Fanout delivers one message to this node's subscribers of topic and
	// returns how many accepted it, or ErrLoopBehind when it refused it.
	Fanout(topic string, op OpCode, payload []byte) (int, error)
}

// Errors of the bus API and of Local.
var (
	ErrUnknownConn  = errors.New("bus: no open connection with this id")
	ErrConnClosed   = errors.New("bus: connection closing")
	ErrSlowConsumer = errors.New("bus: connection's outbound queue is full")
	ErrQueueFull    = errors.New("bus: outbound queue full")
	ErrClosed       = errors.New("bus: closed")
	ErrBadID        = errors.New("bus: connection id: want <node>.<number>")
	ErrNotConnected = errors.New("bus: not connected to NATS")
	// ErrLoopBehind is what Local.Fanout returns when it refused a message
	// because an event loop is too far behind.
	ErrLoopBehind = errors.New("bus: event loop behind: message refused")
)

// State is the state of the connection to NATS.
type State int32

// States of the bus.
const (
	StateConnecting   State = iota // never connected yet: retrying
	StateConnected                 // connected
	StateReconnecting              // lost, retrying with back-off
	StateClosed                    // closed by Close
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	}
	return "closed"
}

// Defaults of Options.
const (
	DefaultAuthTimeout = 2 * time.Second
	// DefaultLogInterval is how often a repeated warning is summarised
	// (Options.LogInterval, ServerOptions.LogInterval).
	DefaultLogInterval  = repeatlog.DefaultInterval
	DefaultQueueLen     = 1 << 16
	DefaultReconnectMin = 100 * time.Millisecond
	DefaultReconnectMax = 5 * time.Second
	DefaultReconnectBuf = 8 << 20
	// topicQueueLen bounds the topic messages received and not yet fanned
	// out; beyond it the NATS client drops them (ReasonBusSlowConsumer).
	topicQueueLen = 1 << 16
)

// Options configure a Bus.
type Options struct {
	// URLs are the NATS servers to join (nats://host:port, ...). Empty with
	// Embedded set: the bus connects to its embedded server in process.
	URLs []string
	// Embedded, when set, starts a NATS server in the process (Start),
	// through StartServer, and stops it after the bus (Close).
	Embedded *ServerOptions
	// StartServer starts the embedded server; needed with Embedded.
	StartServer ServerStarter
	// Prefix is the first token(s) of every subject; "" means
	// DefaultPrefix.
	Prefix string
	// Node is this node's id, unique in the fleet; "" draws a random one.
	Node string
	// AuthTimeout bounds the wait for an authorisation reply; zero means
	// DefaultAuthTimeout.
	AuthTimeout time.Duration
	// QueueLen bounds the messages waiting to be published (from event
	// loops, which never wait); zero means DefaultQueueLen.
	QueueLen int
	// ReconnectMin and ReconnectMax bound the exponential back-off between
	// reconnection attempts; zero means the defaults.
	ReconnectMin, ReconnectMax time.Duration
	// ReconnectBuf is how many bytes of messages are kept while
	// reconnecting, sent once the bus is back; beyond it they are counted
	// as ReasonBusDown. Zero means DefaultReconnectBuf.
	ReconnectBuf int
	// Logger receives the bus's log lines (connection lost and regained,
	// at warning and info level), and the embedded server's unless it has
	// its own. A repeated warning is logged once, then summarised once per
	// LogInterval (zero means DefaultLogInterval) until the connection is
	// regained. Nil means slog.Default().
	Logger      *slog.Logger
	LogInterval time.Duration
}

// Bus is one gateway node's connection to the NATS bus: it forwards the
// node's outbound messages (bridged client messages, topic publishes,
// events, authorisation requests) and delivers inbound ones (messages for
// the node's connections, topic messages the node has subscribers for) to
// Local. Safe for concurrent use; the methods called from event loops
// (Forward, Publish, Event, Watch, Unwatch, Authorize) never block.
type Bus struct {
	opts  Options
	subj  *Subjects
	local Local
	log   *slog.Logger // o.Logger, repeated warnings summarised (warn)
	warn  *repeatlog.State

	srv EmbeddedServer // nil without Options.Embedded
	nc  *nats.Conn

	textHdr, binHdr nats.Header // of topic messages this node publishes

	out     chan outMsg
	topicCh chan *nats.Msg
	stop    chan struct{}
	stopped atomic.Bool
	wg      sync.WaitGroup

	// Topic interest: want is what the gateway asked for, have the
	// subscriptions made; the interest goroutine reconciles them.
	imu     sync.Mutex
	want    map[string]bool
	dirty   map[string]struct{}
	kick    chan struct{}
	hmu     sync.Mutex
	have    map[string]*nats.Subscription
	dropped uint64 // drops of subscriptions since removed, under hmu
	connSub *nats.Subscription

	auth  authMux
	stats counters
	state atomic.Int32
}

// outMsg is a message waiting for the publisher goroutine.
type outMsg struct {
	m     *nats.Msg
	kind  uint8
	token uint64 // KindAuth: the request's token
}

// New prepares a bus; Start connects it. It checks the options.
func New(o Options, local Local) (*Bus, error) {
	if local == nil {
		return nil, errors.New("bus: nil Local")
	}
	if len(o.URLs) == 0 && o.Embedded == nil {
		return nil, errors.New("bus: no NATS server: give URLs or an embedded server")
	}
	if o.Embedded != nil && o.StartServer == nil {
		return nil, errors.New("bus: an embedded server needs Options.StartServer (natsembed.Starter)")
	}
	for _, u := range o.URLs {
		if err := ValidServerURL(u); err != nil {
			return nil, fmt.Errorf("bus: %w", err)
		}
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Node == "" {
		o.Node = RandomNode()
	}
	subj, err := NewSubjects(o.Prefix, o.Node)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = DefaultAuthTimeout
	}
	if o.QueueLen <= 0 {
		o.QueueLen = DefaultQueueLen
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = DefaultReconnectMin
	}
	if o.ReconnectMax <= 0 {
		o.ReconnectMax = DefaultReconnectMax
	}
	o.ReconnectMax = max(o.ReconnectMax, o.ReconnectMin)
	if o.ReconnectBuf <= 0 {
		o.ReconnectBuf = DefaultReconnectBuf
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	log, warn := repeatlog.New(o.Logger, o.LogInterval)
	b := &Bus{
		opts:    o,
		subj:    subj,
		local:   local,
		log:     log,
		warn:    warn,
		textHdr: nats.Header{HeaderNode: {o.Node}},
		binHdr:  nats.Header{HeaderNode: {o.Node}, HeaderOpcode: {opcodeBinary}},
		out:     make(chan outMsg, o.QueueLen),
		topicCh: make(chan *nats.Msg, topicQueueLen),
		stop:    make(chan struct{}),
		want:    map[string]bool{},
		dirty:   map[string]struct{}{},
		kick:    make(chan struct{}, 1),
		have:    map[string]*nats.Subscription{},
	}
	b.auth.init(b)
	return b, nil
}

// RandomNode returns a fresh node id: eight random lower-case letters and
// digits, so that connection ids of a restarted node never repeat.
func RandomNode() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [8]byte
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			b[i] = alphabet[mrand.IntN(len(alphabet))]
			continue
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b[:])
}

// Subjects returns the node's subjects.
func (b *Bus) Subjects() *Subjects { return b.subj }

// Node returns the node id.
func (b *Bus) Node() string { return b.subj.Node() }

// Server returns the embedded server once Start started it, nil when the
// bus joins external servers.
func (b *Bus) Server() EmbeddedServer { return b.srv }

// Start starts the embedded server, if any, and connects. A NATS server
// that cannot be reached is not an error: the bus keeps retrying in the
// background with back-off (State says where it is), local connections
// being served meanwhile. Start fails on a bad option or when the embedded
// server cannot listen.
func (b *Bus) Start() error {
	if b.opts.Embedded != nil {
		so := *b.opts.Embedded
		if so.Name == "" {
			so.Name = b.subj.Node()
		}
		if so.Logger == nil {
			so.Logger = b.opts.Logger // the server summarises its own repeats
		}
		if so.LogInterval == 0 {
			so.LogInterval = b.opts.LogInterval
		}
		srv, err := b.opts.StartServer.StartServer(so)
		if err != nil {
			return err
		}
		b.srv = srv
	}
	opts := []nats.Option{
		nats.Name("upgate " + b.subj.Node()),
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.CustomReconnectDelay(b.backoff),
		nats.ReconnectBufSize(b.opts.ReconnectBuf),
		nats.Timeout(2 * time.Second),
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.ConnectHandler(func(*nats.Conn) {
			b.state.Store(int32(StateConnected))
			b.warn.Reset()
			b.log.Info("bus: connected", "node", b.subj.Node())
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if b.stopped.Load() {
				return
			}
			b.state.Store(int32(StateReconnecting))
			b.stats.disconnects.Add(1)
			b.log.Warn("bus: connection lost; reconnecting with back-off", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.state.Store(int32(StateConnected))
			b.stats.reconnects.Add(1)
			b.warn.Reset()
			b.log.Info("bus: reconnected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) { b.state.Store(int32(StateClosed)) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				b.log.Warn("bus: dropping inbound messages: the node does not keep up", "subject", sub.Subject)
				return
			}
			b.log.Warn("bus: asynchronous error", "err", err)
		}),
	}
	url := strings.Join(b.opts.URLs, ",")
	if b.srv != nil {
		opts = append(opts, nats.InProcessServer(b.srv))
		url = b.srv.ClientURL()
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		if b.srv != nil {
			b.srv.Shutdown()
		}
		return fmt.Errorf("bus: %w", err)
	}
	b.nc = nc
	if nc.IsConnected() {
		b.state.Store(int32(StateConnected))
	}
	sub, err := nc.Subscribe(b.subj.ConnWildcard(), b.onConn)
	if err == nil {
		err = sub.SetPendingLimits(1<<20, 256<<20)
	}
	if err == nil {
		err = b.auth.start(nc)
	}
	if err != nil {
		nc.Close()
		if b.srv != nil {
			b.srv.Shutdown()
		}
		return fmt.Errorf("bus: subscribing: %w", err)
	}
	b.connSub = sub
	if nc.IsConnected() {
		// The connection subscriptions are in place at the server when
		// Start returns.
		_ = nc.FlushTimeout(2 * time.Second)
	}
	b.wg.Add(4)
	go b.publisher()
	go b.interest()
	go b.topics()
	go b.auth.expire()
	return nil
}

// backoff is the delay before the next round of reconnection attempts:
// exponential from ReconnectMin to ReconnectMax, with ±20% jitter.
func (b *Bus) backoff(attempts int) time.Duration {
	d := b.opts.ReconnectMin
	for i := 1; i < attempts && d < b.opts.ReconnectMax; i++ {
		d *= 2
	}
	d = min(d, b.opts.ReconnectMax)
	j := time.Duration(mrand.Int64N(int64(d)/5 + 1))
	if mrand.IntN(2) == 0 {
		return d - j
	}
	return d + j
}

// State returns the state of the connection to NATS.
func (b *Bus) State() State {
	if b.nc == nil {
		if b.stopped.Load() {
			return StateClosed
		}
		return StateConnecting
	}
	switch b.nc.Status() {
	case nats.CONNECTED, nats.DRAINING_SUBS, nats.DRAINING_PUBS:
		return StateConnected
	case nats.CLOSED:
		return StateClosed
	}
	if State(b.state.Load()) == StateConnecting {
		return StateConnecting
	}
	return StateReconnecting
}

// Connected reports whether the bus is connected to NATS.
func (b *Bus) Connected() bool { return b.State() == StateConnected }

// Close stops the bus: messages already queued are published (for at most
// timeout), subscriptions end, the connection closes, then the embedded
// server stops. Pending authorisation requests end as unavailable. Any
// goroutine; later calls do nothing.
func (b *Bus) Close(timeout time.Duration) {
	if !b.stopped.CompareAndSwap(false, true) {
		return
	}
	close(b.stop)
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	t := time.NewTimer(timeout)
	select {
	case <-done:
	case <-t.C:
		b.log.Warn("bus: queued messages not all published before the close timeout")
	}
	t.Stop()
	if b.nc != nil {
		if b.nc.IsConnected() {
			_ = b.nc.FlushTimeout(max(timeout/2, 100*time.Millisecond))
		}
		b.nc.Close()
	}
	b.auth.closeAll()
	if b.srv != nil {
		b.srv.Shutdown()
	}
	b.warn.Close()
}

// enqueue hands a message to the publisher goroutine without waiting.
func (b *Bus) enqueue(o outMsg) error {
	if b.stopped.Load() {
		b.stats.drop(ReasonBusDown)
		return ErrClosed
	}
	select {
	case b.out <- o:
		return nil
	default:
		b.stats.drop(ReasonQueueFull)
		return ErrQueueFull
	}
}

// publisher publishes queued messages; at Close it publishes what is left.
func (b *Bus) publisher() {
	defer b.wg.Done()
	for {
		select {
		case o := <-b.out:
			b.publish(o)
		case <-b.stop:
			for {
				select {
				case o := <-b.out:
					b.publish(o)
				default:
					return
				}
			}
		}
	}
}

// publish publishes one message and counts what became of it.
func (b *Bus) publish(o outMsg) {
	err := b.nc.PublishMsg(o.m)
	if err == nil {
		b.stats.out[o.kind].Add(1)
		return
	}
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		b.stats.drop(ReasonTooLarge)
	case errors.Is(err, nats.ErrBadSubject), errors.Is(err, nats.ErrInvalidMsg):
		b.stats.drop(ReasonBadMessage)
	default:
		b.stats.drop(ReasonBusDown)
	}
	if o.kind == KindAuth {
		b.auth.finish(o.token, AuthResult{Outcome: AuthUnavailable, Status: 503, Reason: "Authorisation service unreachable."})
	}
}

// copyBytes returns an own copy of p (payloads handed in point into an
// event loop's read buffer).
func copyBytes(p []byte) []byte { return append(make([]byte, 0, len(p)), p...) }

// Forward publishes a client's message on a bridge route to c.Subject, with
// c's headers, and with the connection's subject as the reply subject (a
// backend's msg.Respond reaches the client). payload is copied. It never
// blocks: a full queue drops the message (counted) and returns ErrQueueFull.
func (b *Bus) Forward(c *Conn, op OpCode, payload []byte) error {
	return b.enqueue(outMsg{kind: KindIn, m: &nats.Msg{
		Subject: c.Subject, Reply: b.subj.Conn(c.FleetID), Header: c.headerOf(op), Data: copyBytes(payload),
	}})
}

// Publish sends a topic message to the other nodes: <prefix>.topic.<name>.
// This node's own subscribers are not reached (the caller fans out locally:
// the connection has no echo). payload is copied; it never blocks.
func (b *Bus) Publish(topic string, op OpCode, payload []byte) error {
	h := b.textHdr
	if op == OpBinary {
		h = b.binHdr
	}
	return b.enqueue(outMsg{kind: KindTopic, m: &nats.Msg{Subject: b.subj.Topic(topic), Header: h, Data: copyBytes(payload)}})
}

// Event publishes a lifecycle event (EventOpen, or EventClose with the
// close code) for c. It never blocks.
func (b *Bus) Event(name string, c *Conn, code uint16) {
	_ = b.enqueue(outMsg{kind: KindEvent, m: b.eventMsg(name, c, code, time.Now())})
}

// connMsg returns the message that delivers payload (or closes, when
// closeCode is not zero) to the connection with fleet id id.
func (b *Bus) connMsg(id string, op OpCode, payload []byte, closeCode uint16) (*nats.Msg, error) {
	if _, _, err := ParseFleetID(id); err != nil {
		return nil, ErrBadID
	}
	m := &nats.Msg{Subject: b.subj.Conn(id), Data: copyBytes(payload)}
	switch {
	case closeCode != 0:
		m.Header = nats.Header{HeaderClose: {fmt.Sprint(closeCode)}}
	case op == OpBinary:
		m.Header = nats.Header{HeaderOpcode: {opcodeBinary}}
	}
	return m, nil
}

// Send sends a message to the connection with this fleet id, on whichever
// node it lives, without waiting for the delivery. It never blocks.
func (b *Bus) Send(id string, op OpCode, payload []byte) error {
	m, err := b.connMsg(id, op, payload, 0)
	if err != nil {
		return err
	}
	return b.enqueue(outMsg{kind: KindConn, m: m})
}

// SendWait sends a message to the connection with this fleet id and waits
// for its node to answer whether it was delivered: nil, ErrUnknownConn
// (also when no node answers for it), ErrConnClosed, ErrSlowConsumer,
// ErrNotConnected, or ctx's error. closeCode, when not zero, closes the
// connection instead, payload being the reason. It blocks: not for event
// loops.
func (b *Bus) SendWait(ctx context.Context, id string, op OpCode, payload []byte, closeCode uint16) error {
	m, err := b.connMsg(id, op, payload, closeCode)
	if err != nil {
		return err
	}
	if b.nc == nil || !b.nc.IsConnected() {
		return ErrNotConnected
	}
	reply, err := b.nc.RequestMsgWithContext(ctx, m)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return ErrUnknownConn
	case err != nil:
		return err
	}
	b.stats.out[KindConn].Add(1)
	var r connReply
	if json.Unmarshal(reply.Data, &r) != nil {
		return errors.New("bus: malformed answer from the connection's node")
	}
	return r.err()
}

// connReply is the answer to a request on <prefix>.conn.<id>.
type connReply struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"` // a reason name: unknown_conn, conn_closed, ...
}

func (r connReply) err() error {
	if r.OK {
		return nil
	}
	switch r.Error {
	case reasonNames[ReasonUnknownConn]:
		return ErrUnknownConn
	case reasonNames[ReasonConnClosed]:
		return ErrConnClosed
	case reasonNames[ReasonSlowConsumer]:
		return ErrSlowConsumer
	}
	return errors.New("bus: not delivered: " + r.Error)
}

// onConn handles a message for one of this node's connections.
func (b *Bus) onConn(m *nats.Msg) {
	b.stats.in[KindConn].Add(1)
	reason := b.deliver(m)
	if reason >= 0 {
		b.stats.drop(reason)
	}
	if m.Reply != "" {
		r := connReply{OK: reason < 0}
		if reason >= 0 {
			r.Error = reasonNames[reason]
		}
		data, _ := json.Marshal(r)
		_ = m.Respond(data)
	}
}

// deliver hands m to Local and returns the reason it failed, -1 for none.
func (b *Bus) deliver(m *nats.Msg) int {
	n, ok := b.subj.ConnOf(m.Subject)
	if !ok {
		return ReasonBadMessage
	}
	var err error
	if code, reason, has, valid := closeOf(m.Header, m.Data); has {
		if !valid {
			return ReasonBadMessage
		}
		err = b.local.Disconnect(n, code, reason)
	} else {
		op, ok := opcodeOf(m.Header, m.Data)
		if !ok {
			return ReasonBadMessage
		}
		err = b.local.Deliver(n, op, m.Data)
	}
	switch {
	case err == nil:
		return -1
	case errors.Is(err, ErrUnknownConn):
		return ReasonUnknownConn
	case errors.Is(err, ErrSlowConsumer):
		return ReasonSlowConsumer
	case errors.Is(err, ErrConnClosed):
		return ReasonConnClosed
	}
	return ReasonBadMessage
}

// Watch tells the bus that topic has local subscribers: the node subscribes
// to its subject. Unwatch tells it the last one left: the node unsubscribes.
// They never block; the subscription follows shortly. Calls for one topic
// must come in order (the gateway makes them under the topic's lock).
func (b *Bus) Watch(topic string) { b.setInterest(topic, true) }

// Unwatch is the reverse of Watch.
func (b *Bus) Unwatch(topic string) { b.setInterest(topic, false) }

func (b *Bus) setInterest(topic string, on bool) {
	b.imu.Lock()
	if on {
		b.want[topic] = true
	} else {
		delete(b.want, topic)
	}
	b.dirty[topic] = struct{}{}
	b.imu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// interest reconciles topic subscriptions with the gateway's interest.
func (b *Bus) interest() {
	defer b.wg.Done()
	for {
		select {
		case <-b.kick:
		case <-b.stop:
			return
		}
		b.imu.Lock()
		changes := make(map[string]bool, len(b.dirty))
		for t := range b.dirty {
			changes[t] = b.want[t]
		}
		clear(b.dirty)
		b.imu.Unlock()
		for t, want := range changes {
			b.hmu.Lock()
			sub := b.have[t]
			b.hmu.Unlock()
			switch {
			case want && sub == nil:
				s, err := b.nc.ChanSubscribe(b.subj.Topic(t), b.topicCh)
				if err != nil {
					b.log.Warn("bus: cannot subscribe to a topic", "topic", t, "err", err)
					continue
				}
				b.hmu.Lock()
				b.have[t] = s
				b.hmu.Unlock()
			case !want && sub != nil:
				b.hmu.Lock()
				if n, err := sub.Dropped(); err == nil {
					b.dropped += uint64(n)
				}
				delete(b.have, t)
				b.hmu.Unlock()
				_ = sub.Unsubscribe()
			}
		}
	}
}

// Watching reports whether the node is subscribed to topic's subject.
func (b *Bus) Watching(topic string) bool {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	return b.have[topic] != nil
}

// topics fans topic messages out to the local subscribers, in the order
// they arrive.
func (b *Bus) topics() {
	defer b.wg.Done()
	for {
		select {
		case m := <-b.topicCh:
			b.onTopic(m)
		case <-b.stop:
			return
		}
	}
}

func (b *Bus) onTopic(m *nats.Msg) {
	b.stats.in[KindTopic].Add(1)
	name, ok := b.subj.TopicOf(m.Subject)
	if !ok {
		b.stats.drop(ReasonBadMessage)
		return
	}
	if node, _ := get(m.Header, HeaderNode); node == b.subj.Node() {
		return // this node's own publish, already delivered locally
	}
	op, ok := opcodeOf(m.Header, m.Data)
	if !ok {
		b.stats.drop(ReasonBadMessage)
		return
	}
	switch n, err := b.local.Fanout(name, op, m.Data); {
	case errors.Is(err, ErrLoopBehind):
		b.stats.drop(ReasonLoopBehind)
	case n == 0:
		b.stats.drop(ReasonNoSubscribers)
	}
}

// Stats returns a snapshot of the counters.
func (b *Bus) Stats() Stats {
	var s Stats
	s.State = b.State()
	for i := range s.Out {
		s.Out[i] = b.stats.out[i].Load()
		s.In[i] = b.stats.in[i].Load()
	}
	for i := range s.Undeliverable {
		s.Undeliverable[i] = b.stats.undeliverable[i].Load()
	}
	for i := range s.Auth {
		s.Auth[i] = b.stats.auth[i].Load()
	}
	s.AuthPending = b.auth.pendingCount()
	s.Disconnects = b.stats.disconnects.Load()
	s.Reconnects = b.stats.reconnects.Load()
	b.hmu.Lock()
	s.Topics = len(b.have)
	dropped := b.dropped
	for _, sub := range b.have {
		if n, err := sub.Dropped(); err == nil {
			dropped += uint64(n)
		}
	}
	b.hmu.Unlock()
	if b.connSub != nil {
		if n, err := b.connSub.Dropped(); err == nil {
			dropped += uint64(n)
		}
	}
	s.Undeliverable[ReasonBusSlowConsumer] += dropped
	return s
}
