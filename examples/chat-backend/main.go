// Command chat-backend is an example backend for an upgate fleet: a chat
// server that holds no WebSocket itself. Gateways bridge the clients of
// their /chat/{topic} route to NATS; this program consumes what clients say
// and answers through the subjects every gateway listens to:
//
//	<prefix>.in.chat            what a client said (headers name the connection,
//	                            its room in Upgate-Topic, its user in Upgate-User)
//	<prefix>.conn.<id>          answer one connection (here: msg.Respond, since the
//	                            reply subject of a bridged message is that subject)
//	<prefix>.topic.<room>       say something to every client in a room, on every node
//	<prefix>.event.open|close   presence: who joined and left
//	<prefix>.auth               who may connect: ?name=NAME, given as the user id,
//	                            with the user's own topic user.NAME to join
//
// Commands a client may send: "/nick NAME", "/who", "/msg NAME TEXT"; any
// other line is said to the room. Several instances may run at once (they
// share the work as the queue group "chat-backend"); the nicknames and the
// member lists are then each instance's own, which a real backend would keep
// in a shared store.
//
// Run it next to a gateway with a NATS server embedded:
//
//	upgate --nats embedded --route '/chat/{topic}=bridge,auth' &
//	go run ./examples/chat-backend --nats nats://127.0.0.1:4222
//	npx wscat -c 'ws://localhost:8080/chat/lobby?name=alice'
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/nats-io/nats.go"
)

// config is the command line.
type config struct {
	url    string // NATS servers
	prefix string // subject prefix of the gateways
	route  string // subject token of the bridge route
	auth   bool   // answer <prefix>.auth
}

func main() {
	var cfg config
	flag.StringVar(&cfg.url, "nats", nats.DefaultURL, "NATS server URLs, comma-separated")
	flag.StringVar(&cfg.prefix, "prefix", "upgate", "subject prefix of the gateways (nats.prefix)")
	flag.StringVar(&cfg.route, "route", "chat", "subject token of the bridge route: the gateway publishes to <prefix>.in.<route>")
	flag.BoolVar(&cfg.auth, "auth", true, "answer authorisation requests on <prefix>.auth")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, slog.Default()); err != nil {
		slog.Error("chat-backend", "err", err)
		os.Exit(1)
	}
}

// Headers the gateway sets (see the README's wire contract).
const (
	hConn  = "Upgate-Conn"
	hTopic = "Upgate-Topic"
	hUser  = "Upgate-User"
)

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// chat is the backend's state: nicknames by connection id, members by room.
type chat struct {
	nc     *nats.Conn
	prefix string
	log    *slog.Logger

	mu    sync.Mutex
	nicks map[string]string          // connection id → nickname
	rooms map[string]map[string]bool // room → connection ids
	room  map[string]string          // connection id → room
}

// run serves until ctx ends.
func run(ctx context.Context, cfg config, log *slog.Logger) error {
	nc, err := nats.Connect(cfg.url, nats.Name("chat-backend"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return err
	}
	defer nc.Close()
	c := &chat{nc: nc, prefix: cfg.prefix, log: log,
		nicks: map[string]string{}, rooms: map[string]map[string]bool{}, room: map[string]string{}}
	const queue = "chat-backend"
	subs := []struct {
		subject string
		handler nats.MsgHandler
	}{
		{cfg.prefix + ".in." + cfg.route, c.said},
		{cfg.prefix + ".event.open", c.opened},
		{cfg.prefix + ".event.close", c.closed},
	}
	if cfg.auth {
		subs = append(subs, struct {
			subject string
			handler nats.MsgHandler
		}{cfg.prefix + ".auth", c.authorize})
	}
	for _, s := range subs {
		if _, err := nc.QueueSubscribe(s.subject, queue, s.handler); err != nil {
			return err
		}
	}
	if err := nc.Flush(); err != nil && nc.IsConnected() {
		return err
	}
	log.Info("chat-backend ready", "nats", cfg.url, "in", subs[0].subject)
	<-ctx.Done()
	return nc.Drain()
}

// authRequest is the part of the gateway's authorisation request used here.
type authRequest struct {
	Conn  string `json:"conn"`
	Query string `json:"query"`
	Topic string `json:"topic"`
}

// authorize lets in whoever gives a valid ?name=, as that user, and makes
// the connection join the user's own topic (for /msg).
func (c *chat) authorize(m *nats.Msg) {
	var req authRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		_ = m.Respond([]byte(`{"allow":false,"status":403,"reason":"bad request"}`))
		return
	}
	name := ""
	for kv := range strings.SplitSeq(req.Query, "&") {
		if v, ok := strings.CutPrefix(kv, "name="); ok {
			name = v
		}
	}
	if !validName.MatchString(name) {
		_ = m.Respond([]byte(`{"allow":false,"status":401,"reason":"connect with ?name=NAME (letters, digits, - and _)"}`))
		return
	}
	reply, _ := json.Marshal(map[string]any{"allow": true, "user": name, "topics": []string{"user." + name}})
	_ = m.Respond(reply)
}

// opened records a connection that joined a room and tells the room.
func (c *chat) opened(m *nats.Msg) {
	id, room := m.Header.Get(hConn), m.Header.Get(hTopic)
	if id == "" || room == "" {
		return // another route's connection
	}
	nick := m.Header.Get(hUser)
	if nick == "" {
		nick = "guest-" + id
	}
	c.mu.Lock()
	c.nicks[id] = nick
	c.room[id] = room
	if c.rooms[room] == nil {
		c.rooms[room] = map[string]bool{}
	}
	c.rooms[room][id] = true
	c.mu.Unlock()
	c.say(room, "* "+nick+" joined "+room)
}

// closed forgets a connection and tells its room.
func (c *chat) closed(m *nats.Msg) {
	id := m.Header.Get(hConn)
	c.mu.Lock()
	nick, room := c.nicks[id], c.room[id]
	delete(c.nicks, id)
	delete(c.room, id)
	if r := c.rooms[room]; r != nil {
		delete(r, id)
		if len(r) == 0 {
			delete(c.rooms, room)
		}
	}
	c.mu.Unlock()
	if room != "" {
		c.say(room, "* "+nick+" left")
	}
}

// said handles one line a client sent.
func (c *chat) said(m *nats.Msg) {
	id, room := m.Header.Get(hConn), m.Header.Get(hTopic)
	line := strings.TrimSpace(string(m.Data))
	c.mu.Lock()
	nick := c.nicks[id]
	if nick == "" {
		nick = m.Header.Get(hUser)
	}
	if nick == "" {
		nick = "guest-" + id
	}
	c.mu.Unlock()
	switch {
	case strings.HasPrefix(line, "/nick "):
		name := strings.TrimSpace(strings.TrimPrefix(line, "/nick "))
		if !validName.MatchString(name) {
			_ = m.Respond([]byte("nicknames are 1 to 32 letters, digits, - and _"))
			return
		}
		c.mu.Lock()
		c.nicks[id] = name
		c.mu.Unlock()
		_ = m.Respond([]byte("you are now " + name))
		c.say(room, "* "+nick+" is now "+name)
	case line == "/who":
		c.mu.Lock()
		var names []string
		for other := range c.rooms[room] {
			names = append(names, c.nicks[other])
		}
		c.mu.Unlock()
		slices.Sort(names)
		_ = m.Respond([]byte("in " + room + ": " + strings.Join(names, ", ")))
	case strings.HasPrefix(line, "/msg "):
		to, text, _ := strings.Cut(strings.TrimPrefix(line, "/msg "), " ")
		if !validName.MatchString(to) || text == "" {
			_ = m.Respond([]byte("usage: /msg NAME TEXT"))
			return
		}
		// Every connection of user NAME joined topic user.NAME when it
		// was authorised: one publish reaches them on whatever node.
		c.publish("user."+to, "(private) "+nick+": "+text)
	case line == "":
	default:
		c.say(room, nick+": "+line)
	}
}

// say publishes a line to every member of room, on every gateway.
func (c *chat) say(room, text string) {
	if room == "" {
		return
	}
	c.publish(room, text)
}

// publish sends text to topic. Room names from the gateway are plain
// tokens here; a topic with spaces or wildcards would be escaped (%20, ...)
// as the wire contract says.
func (c *chat) publish(topic, text string) {
	if err := c.nc.Publish(c.prefix+".topic."+topic, []byte(text)); err != nil {
		c.log.Warn("publish", "topic", topic, "err", fmt.Sprint(err))
	}
}
