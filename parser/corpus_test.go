package parser_test

// handshake is one real opening handshake, as a client sends it.
type handshake struct {
	name string
	head string
}

// handshakes is the benchmark and test corpus. The Go clients, node's ws and
// curl were captured on the wire from the libraries' default dialers; the
// browser heads follow the header sets and order those browsers send for
// `new WebSocket(url)` (the key and cookies vary per connection).
var handshakes = []handshake{
	{"chrome", "GET /chat?room=1 HTTP/1.1\r\n" +
		"Host: gateway.example.com\r\n" +
		"Connection: Upgrade\r\n" +
		"Pragma: no-cache\r\n" +
		"Cache-Control: no-cache\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n" +
		"Upgrade: websocket\r\n" +
		"Origin: https://app.example.com\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
		"Accept-Language: en-US,en;q=0.9\r\n" +
		"Cookie: session=8f4c2a9e1b7d4e3f; theme=dark\r\n" +
		"Sec-WebSocket-Key: bNJ0w5jZ3gBr5QwRkGXWkQ==\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" +
		"Sec-WebSocket-Protocol: chat, superchat\r\n" +
		"\r\n"},
	{"firefox", "GET /chat?room=1 HTTP/1.1\r\n" +
		"Host: gateway.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0\r\n" +
		"Accept: */*\r\n" +
		"Accept-Language: en-US,en;q=0.5\r\n" +
		"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Origin: https://app.example.com\r\n" +
		"Sec-WebSocket-Protocol: chat\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate\r\n" +
		"Sec-WebSocket-Key: 3X0ViBnJ4yL0r1Qz8XqNhA==\r\n" +
		"Connection: keep-alive, Upgrade\r\n" +
		"Cookie: session=8f4c2a9e1b7d4e3f\r\n" +
		"Sec-Fetch-Dest: empty\r\n" +
		"Sec-Fetch-Mode: websocket\r\n" +
		"Sec-Fetch-Site: same-site\r\n" +
		"Pragma: no-cache\r\n" +
		"Cache-Control: no-cache\r\n" +
		"Upgrade: websocket\r\n" +
		"\r\n"},
	{"safari", "GET /chat?room=1 HTTP/1.1\r\n" +
		"Host: gateway.example.com\r\n" +
		"Origin: https://app.example.com\r\n" +
		"Upgrade: websocket\r\n" +
		"Accept-Encoding: gzip, deflate\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate\r\n" +
		"Sec-WebSocket-Key: 6ZbH0RVVbX2CG4Q1kqsmGA==\r\n" +
		"User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Pragma: no-cache\r\n" +
		"Cache-Control: no-cache\r\n" +
		"Accept-Language: en-US,en;q=0.9\r\n" +
		"\r\n"},
	{"curl", "GET /echo HTTP/1.1\r\n" +
		"Host: 127.0.0.1:8080\r\n" +
		"User-Agent: curl/7.88.1\r\n" +
		"Accept: */*\r\n" +
		"Connection: Upgrade\r\n" +
		"Upgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n" +
		"\r\n"},
	{"k6", "GET /echo HTTP/1.1\r\n" +
		"Host: 127.0.0.1:8080\r\n" +
		"User-Agent: k6/0.54.0 (https://k6.io/)\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: Lq3dAw1Pt2nbc+tWnRc2Vg==\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Upgrade: websocket\r\n" +
		"\r\n"},
	{"gorilla", "GET /chat?room=1 HTTP/1.1\r\n" +
		"Host: 127.0.0.1:45135\r\n" +
		"User-Agent: Go-http-client/1.1\r\n" +
		"Connection: Upgrade\r\n" +
		"Origin: http://example.com\r\n" +
		"Sec-WebSocket-Key: Vh42myVxc0w6JEphBlyF+A==\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Upgrade: websocket\r\n" +
		"\r\n"},
	{"coder", "GET /chat?room=1 HTTP/1.1\r\n" +
		"Host: 127.0.0.1:45135\r\n" +
		"User-Agent: Go-http-client/1.1\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-Websocket-Key: Bd/6hwXeVnlmAVwrPa02bA==\r\n" +
		"Sec-Websocket-Protocol: chat\r\n" +
		"Sec-Websocket-Version: 13\r\n" +
		"Upgrade: websocket\r\n" +
		"Accept-Encoding: gzip\r\n" +
		"\r\n"},
	{"gobwas", "GET /chat?room=1 HTTP/1.1\r\n" +
		"Host: 127.0.0.1:45135\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: lDAKgNu2nqbjqxhyBzyA1A==\r\n" +
		"\r\n"},
	{"node-ws", "GET /chat?room=1 HTTP/1.1\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: oy2cHAgImwBSO1KmvgZQUw==\r\n" +
		"Connection: Upgrade\r\n" +
		"Upgrade: websocket\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" +
		"Sec-WebSocket-Protocol: chat\r\n" +
		"Host: 127.0.0.1:36045\r\n" +
		"\r\n"},
}
