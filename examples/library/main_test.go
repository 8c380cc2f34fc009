package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/upgate/upgate/gateway"
)

// Example runs the program's parts on ephemeral ports with real clients:
// the Handler of /shout, a subscriber of /news/go that gets a publish of
// the admin API mounted under /admin/, the metrics there, and the
// shutdown that closes both clients with 1001.
func Example() {
	g, err := gateway.New(config("127.0.0.1:0"), gateway.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	if err := g.Start(); err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: routes(g)}
	go srv.Serve(ln)
	admin := "http://" + ln.Addr().String() + "/admin"
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}

	shouter, _, err := dialer.Dial("ws://"+g.Addr().String()+"/shout", nil)
	if err != nil {
		panic(err)
	}
	_ = shouter.WriteMessage(websocket.TextMessage, []byte("hello"))
	_, msg, err := shouter.ReadMessage()
	fmt.Printf("/shout: %s %v\n", msg, err)

	reader, _, err := dialer.Dial("ws://"+g.Addr().String()+"/news/go", nil)
	if err != nil {
		panic(err)
	}
	for deadline := time.Now().Add(10 * time.Second); g.Subscribers("go") == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond) // the subscription lands on the event loop
	}
	resp, err := http.Post(admin+"/publish/go", "text/plain", strings.NewReader("gophers"))
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	fmt.Printf("publish: %d %s", resp.StatusCode, body)
	_, msg, err = reader.ReadMessage()
	fmt.Printf("/news/go: %s %v\n", msg, err)

	resp, err = http.Get(admin + "/metrics")
	if err != nil {
		panic(err)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "upgate_websocket_connections_open{") {
			fmt.Println(sc.Text())
		}
	}
	_ = resp.Body.Close()

	closes := make(chan string, 2)
	for _, c := range []*websocket.Conn{shouter, reader} {
		go func() { // reading answers the server's close frame
			_, _, err := c.ReadMessage()
			_ = c.Close() // then end TCP, as a client does
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				closes <- fmt.Sprint("closed ", ce.Code)
			} else {
				closes <- fmt.Sprint("read: ", err)
			}
		}()
	}
	fmt.Println("shutdown:", shutdown(g, srv, 10*time.Second))
	fmt.Println(<-closes)
	fmt.Println(<-closes)

	// Output:
	// /shout: HELLO <nil>
	// publish: 200 {"delivered":1,"topic":"go"}
	// /news/go: gophers <nil>
	// upgate_websocket_connections_open{route="/news/{topic}"} 1
	// upgate_websocket_connections_open{route="/shout"} 1
	// shutdown: <nil>
	// closed 1001
	// closed 1001
}

// TestREADME checks that the README shows this program as it is.
func TestREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	block, ok := goBlock(readme, "// Command library ")
	if !ok {
		t.Fatal("README.md has no ```go block that starts with the program's doc comment")
	}
	if !bytes.Equal(block, src) {
		a, b := strings.Split(string(block), "\n"), strings.Split(string(src), "\n")
		i := 0
		for i < len(a) && i < len(b) && a[i] == b[i] {
			i++
		}
		line := func(l []string) string {
			if i < len(l) {
				return l[i]
			}
			return "(end)"
		}
		t.Fatalf("README.md's program differs from examples/library/main.go at line %d:\nREADME:  %q\nmain.go: %q\ncopy main.go into the README's block", i+1, line(a), line(b))
	}
}

// goBlock returns the content of the first fenced ```go block of md whose
// first line starts with prefix.
func goBlock(md []byte, prefix string) ([]byte, bool) {
	const open, fence = "```go\n", "\n```\n"
	for {
		i := bytes.Index(md, []byte(open))
		if i < 0 {
			return nil, false
		}
		md = md[i+len(open):]
		j := bytes.Index(md, []byte(fence))
		if j < 0 {
			return nil, false
		}
		if bytes.HasPrefix(md, []byte(prefix)) {
			return md[:j+1], true
		}
		md = md[j+len(fence):]
	}
}
