package api

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"liandong/auth"
)

// The HTTP attack tests run the API behind the server NewServer configures, on
// a loopback listener. Where they wait for the server's timeouts to close slow
// or idle clients, they shorten those timeouts (the values NewServer sets are
// checked by TestNewServerTimeouts); everything else is as served.

// attackServer serves e's handler through NewServer, with tune applied.
func attackServer(t *testing.T, e *env, tune func(*http.Server)) string {
	t.Helper()
	srv := NewServer("127.0.0.1:0", e.h)
	srv.ErrorLog = nil
	if tune != nil {
		tune(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// rawRequest writes req on a fresh connection and returns the status line's code.
func rawRequest(t *testing.T, addr string, req []byte) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	go func() { c.Write(req) }() // the server may answer before it has read it all
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, resp.Header.Get("Content-Type") + " " + string(body)
}

// TestAttackOversizedAndMalformedRequests: oversized headers are refused with
// 431 and oversized bodies with 413 without reading them whole; deeply nested,
// member-flooded and invalid UTF-8 input is refused as a 400 problem; each in
// bounded time, and nothing is written.
func TestAttackOversizedAndMalformedRequests(t *testing.T) {
	e := newEnv(t, false)
	addr := attackServer(t, e, nil)
	w := e.writer(t)
	before, _ := e.node.Store().LastPosition()

	post := func(body string, hdr ...string) []byte {
		var b strings.Builder
		fmt.Fprintf(&b, "POST /v1/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", w, len(body))
		for _, h := range hdr {
			b.WriteString(h + "\r\n")
		}
		b.WriteString("\r\n" + body)
		return []byte(b.String())
	}
	nested := func(open, close string, depth int) string {
		return strings.Repeat(open, depth) + strings.Repeat(close, depth)
	}
	manyMembers := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"catalogue":"supply","body":{`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"k%d":%d`, i, i)
		}
		b.WriteString("}}")
		return b.String()
	}
	chunked := func(n int) []byte {
		var b bytes.Buffer
		fmt.Fprintf(&b, "POST /v1/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", w)
		chunk := strings.Repeat("[", 64<<10)
		for sent := 0; sent < n; sent += len(chunk) {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(chunk), chunk)
		}
		b.WriteString("0\r\n\r\n")
		return b.Bytes()
	}
	cases := []struct {
		name string
		req  []byte
		want int
		kind string
	}{
		{"header of 100 KiB", []byte("GET /v1/records HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 100<<10) + "\r\n\r\n"), 431, ""},
		{"10,000 small headers", []byte("GET /v1/records HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: b\r\n", 10000) + "\r\n"), 431, ""},
		{"Authorization of 70 KiB", []byte("GET /v1/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + strings.Repeat("A", 70<<10) + "\r\n\r\n"), 431, ""},
		{"body announced as 10 GB", []byte(fmt.Sprintf("POST /v1/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{", w)), 413, "too-large"},
		{"chunked body of 4 MiB", chunked(4 << 20), 413, "too-large"},
		{"arrays nested 100,000 deep", post(nested("[", "]", 100000)), 400, "malformed-json"},
		{"objects nested 50,000 deep", post(nested(`{"a":`, "}", 50000)), 400, "malformed-json"},
		{"body nested 65 deep", post(`{"catalogue":"supply","body":` + nested(`{"a":`, "}", 65) + `}`), 400, "malformed-json"},
		{"30,000 members", post(manyMembers(30000)), 422, "validation"},
		{"invalid UTF-8 in a value", post("{\"catalogue\":\"supply\",\"body\":{\"title\":\"\xc3\x28\"}}"), 400, "malformed-json"},
		{"overlong UTF-8 encoding", post("{\"catalogue\":\"supply\",\"body\":{\"title\":\"\xc0\xaf\"}}"), 400, "malformed-json"},
		{"lone surrogate escape", post(`{"catalogue":"supply","body":{"title":"\udc00"}}`), 400, "malformed-json"},
		{"UTF-16 body", post("\xff\xfe{\x00}\x00"), 400, "malformed-json"},
		{"invalid UTF-8 in the query", []byte("GET /v1/records?q=%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad-parameter"},
		{"invalid UTF-8 in the id", []byte("GET /v1/records/tianjin:%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad-parameter"},
		{"invalid UTF-8 in the token", []byte("GET /v1/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe.\xff.\xff\r\n\r\n"), 401, "unauthorized"},
		{"NUL in the path", []byte("GET /v1/records/tianjin:a%00b HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "bad-parameter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, body := rawRequest(t, addr, tc.req)
			took := time.Since(start)
			if code != tc.want {
				t.Fatalf("status %d, want %d: %.300s", code, tc.want, body)
			}
			if tc.kind != "" && (!strings.Contains(body, "application/problem+json") || !strings.Contains(body, ProblemTypePrefix+tc.kind)) {
				t.Fatalf("not a %s problem: %.300s", tc.kind, body)
			}
			// Generous for -race on a loaded machine; the figures without -race
			// are in RELIABILITY.md.
			if took > 20*time.Second {
				t.Fatalf("took %v", took)
			}
			t.Logf("%d in %v", code, took.Round(time.Millisecond))
		})
	}
	if after, _ := e.node.Store().LastPosition(); after != before {
		t.Fatalf("bad input changed the state: feed position %d → %d", before, after)
	}
}

// openConns counts this process's open file descriptors (Linux), or -1.
func openConns() int {
	d, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(d)
}

// settle waits (bounded) until goroutines and descriptors fall to at most the
// given levels, and returns what they were last.
func settle(within time.Duration, maxG, maxFD int) (int, int) {
	deadline := time.Now().Add(within)
	for {
		g, fd := runtime.NumGoroutine(), openConns()
		if g <= maxG && fd <= maxFD || time.Now().After(deadline) {
			return g, fd
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// closedByServer reports whether the server has closed c (read gives EOF or a
// reset, after any answer it sent).
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
	var buf [4096]byte
	for {
		_, err := c.Read(buf[:])
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// TestAttackSlowClients: slow-loris clients (headers a line at a time) and slow
// bodies are closed by the server's timeouts; while they hold their
// connections, goroutines and descriptors grow by a bounded amount per
// connection and an honest client is served at once; once closed, both return
// to where they were.
func TestAttackSlowClients(t *testing.T) {
	e := newEnv(t, false)
	addr := attackServer(t, e, func(s *http.Server) {
		s.ReadHeaderTimeout = time.Second
		s.ReadTimeout = 2 * time.Second
	})
	w := e.writer(t)
	http.Get("http://" + addr + "/healthz") // warm up
	baseG, baseFD := settle(3*time.Second, 0, 0)

	const n = 150
	var conns []net.Conn
	for i := 0; i < 2*n; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if i < n { // slow loris: a request line and headers that never end
			fmt.Fprintf(c, "GET /v1/records HTTP/1.1\r\nHost: x\r\n")
		} else { // a slow body: headers complete, 100 KB announced
			fmt.Fprintf(c, "POST /v1/records HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", w)
		}
		conns = append(conns, c)
	}
	// One goroutine drips a byte to every connection every 200 ms, as long as
	// the server keeps it open.
	stop := make(chan struct{})
	var dripper sync.WaitGroup
	dripper.Add(1)
	go func() {
		defer dripper.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for i, c := range conns {
				c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
				if i < n {
					c.Write([]byte("X-Slow: 1\r\n"))
				} else {
					c.Write([]byte(" "))
				}
			}
		}
	}()
	defer func() { close(stop); dripper.Wait() }()

	time.Sleep(500 * time.Millisecond)
	g, fd := runtime.NumGoroutine(), openConns()
	t.Logf("under attack: %d goroutines (base %d), %d descriptors (base %d) for %d slow connections", g, baseG, fd, baseFD, 2*n)
	if g > baseG+4*2*n {
		t.Errorf("goroutines %d > base %d + 4 per connection", g, baseG)
	}
	if baseFD > 0 && fd > baseFD+2*2*n+20 {
		t.Errorf("descriptors %d > base %d + 2 per connection", fd, baseFD)
	}
	start := time.Now()
	if r := e.do(t, req{method: "GET", path: "/healthz"}); r.StatusCode != 200 {
		t.Fatalf("healthz under attack: %d", r.StatusCode)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("an honest request took %v under attack", took)
	}

	// The timeouts close every slow connection.
	deadline := time.Now().Add(20 * time.Second)
	open := len(conns)
	for open > 0 && time.Now().Before(deadline) {
		open = 0
		for _, c := range conns {
			if !closedByServer(c) {
				open++
			}
		}
		if open > 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if open > 0 {
		t.Fatalf("%d of %d slow connections still open 20 s later", open, len(conns))
	}
	for _, c := range conns {
		c.Close()
	}
	g, fd = settle(10*time.Second, baseG+10, baseFD+10)
	t.Logf("after: %d goroutines, %d descriptors", g, fd)
	if g > baseG+10 {
		t.Errorf("goroutines did not return: %d, base %d", g, baseG)
	}
	if baseFD > 0 && fd > baseFD+10 {
		t.Errorf("descriptors did not return: %d, base %d", fd, baseFD)
	}
}

// TestAttackIdleConnections: 2000 connections held idle, half that never send a
// byte and half that sent one request and keep the connection: the node serves
// honest clients meanwhile, holds a bounded number of goroutines and
// descriptors per connection, and its timeouts close them all.
func TestAttackIdleConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("2000 connections")
	}
	e := newEnv(t, false)
	addr := attackServer(t, e, func(s *http.Server) {
		s.ReadHeaderTimeout = 2 * time.Second
		s.IdleTimeout = 3 * time.Second
	})
	http.Get("http://" + addr + "/healthz")
	baseG, baseFD := settle(3*time.Second, 0, 0)

	const n = 2000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if i%2 == 1 {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("request on connection %d: %v", i, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	g, fd := runtime.NumGoroutine(), openConns()
	t.Logf("%d idle connections: %d goroutines (base %d), %d descriptors (base %d)", n, g, baseG, fd, baseFD)
	if g > baseG+2*n+50 {
		t.Errorf("goroutines %d > base %d + 2 per connection", g, baseG)
	}
	if baseFD > 0 && fd > baseFD+2*n+50 {
		t.Errorf("descriptors %d > base %d + 2 per connection", fd, baseFD)
	}
	start := time.Now()
	if r := e.do(t, req{method: "GET", path: "/v1/records?limit=5"}); r.StatusCode != 200 {
		t.Fatalf("list with %d idle connections: %d", n, r.StatusCode)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("an honest request took %v", took)
	}
	deadline := time.Now().Add(30 * time.Second)
	open := n
	for open > 0 && time.Now().Before(deadline) {
		open = 0
		for _, c := range conns {
			if !closedByServer(c) {
				open++
			}
		}
		if open > 0 {
			time.Sleep(250 * time.Millisecond)
		}
	}
	if open > 0 {
		t.Fatalf("%d of %d idle connections still open 30 s later", open, n)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = conns[:0]
	g, fd = settle(10*time.Second, baseG+10, baseFD+10)
	t.Logf("after the timeouts: %d goroutines, %d descriptors", g, fd)
	if g > baseG+10 || baseFD > 0 && fd > baseFD+10 {
		t.Errorf("not back to base: %d goroutines (base %d), %d descriptors (base %d)", g, baseG, fd, baseFD)
	}
}

// TestAttackTokens: forged and malformed bearer tokens at the HTTP door are
// refused 401 (a valid write token of another centre 403) in bounded time,
// without touching the state.
func TestAttackTokens(t *testing.T) {
	e := newEnv(t, false)
	tk := e.issuers["tianjin"].Key
	now := time.Now()
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "tianjin", "sub": "partner", "aud": []string{testFederation}, "iat": now.Unix(), "nbf": now.Unix(),
			"exp": now.Add(time.Hour).Unix(), "jti": fmt.Sprint(now.UnixNano()), "scope": "read write"}
		if edit != nil {
			edit(c)
		}
		return c
	}
	sign := func(m jwt.SigningMethod, key any, kid any, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(m, c)
		if kid != nil {
			tok.Header["kid"] = kid
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	del := func(k string) func(jwt.MapClaims) { return func(c jwt.MapClaims) { delete(c, k) } }
	set := func(k string, v any) func(jwt.MapClaims) { return func(c jwt.MapClaims) { c[k] = v } }
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	valid := sign(jwt.SigningMethodEdDSA, tk.Private, tk.ID, claims(nil))
	parts := strings.Split(valid, ".")
	_, otherKey, _ := ed25519.GenerateKey(nil)

	cases := []struct {
		name  string
		token string
		want  int
	}{
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, tk.ID, claims(nil)), 401},
		{"alg none, empty signature, valid payload", b64(`{"alg":"none","kid":"`+tk.ID+`"}`) + "." + parts[1] + ".", 401},
		{"HS256 keyed with the public key", sign(jwt.SigningMethodHS256, []byte(tk.Public), tk.ID, claims(nil)), 401},
		{"HS256 keyed with the JWKS x", sign(jwt.SigningMethodHS256, []byte(base64.RawURLEncoding.EncodeToString(tk.Public)), tk.ID, claims(nil)), 401},
		{"unknown kid", sign(jwt.SigningMethodEdDSA, otherKey, "tianjin-tok-ffffffffffff", claims(nil)), 401},
		{"kid path injection", sign(jwt.SigningMethodEdDSA, otherKey, "../../keys/token.key", claims(nil)), 401},
		{"kid SQL injection", sign(jwt.SigningMethodEdDSA, otherKey, "x' OR '1'='1", claims(nil)), 401},
		{"kid of 4 KB", sign(jwt.SigningMethodEdDSA, otherKey, strings.Repeat("k", 4096), claims(nil)), 401},
		{"kid an object", sign(jwt.SigningMethodEdDSA, otherKey, map[string]any{"$ne": ""}, claims(nil)), 401},
		{"jwk header carrying its own key", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims(nil))
			tok.Header["kid"] = tk.ID
			tok.Header["jwk"] = map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(otherKey.Public().(ed25519.PublicKey))}
			s, _ := tok.SignedString(otherKey)
			return s
		}(), 401},
		{"signed with another key under the right kid", sign(jwt.SigningMethodEdDSA, otherKey, tk.ID, claims(nil)), 401},
		{"missing exp", sign(jwt.SigningMethodEdDSA, tk.Private, tk.ID, claims(del("exp"))), 401},
		{"missing aud", sign(jwt.SigningMethodEdDSA, tk.Private, tk.ID, claims(del("aud"))), 401},
		{"missing iss", sign(jwt.SigningMethodEdDSA, tk.Private, tk.ID, claims(del("iss"))), 401},
		{"wrong aud", sign(jwt.SigningMethodEdDSA, tk.Private, tk.ID, claims(set("aud", "other-federation"))), 401},
		{"iss of another centre under this centre's key", sign(jwt.SigningMethodEdDSA, tk.Private, tk.ID, claims(set("iss", "hebei"))), 401},
		{"expired", sign(jwt.SigningMethodEdDSA, tk.Private, tk.ID, claims(set("exp", now.Add(-time.Hour).Unix()))), 401},
		{"not yet valid", sign(jwt.SigningMethodEdDSA, tk.Private, tk.ID, claims(set("nbf", now.Add(time.Hour).Unix()))), 401},
		{"issued in the future", sign(jwt.SigningMethodEdDSA, tk.Private, tk.ID, claims(set("iat", now.Add(time.Hour).Unix()))), 401},
		{"exp of 1e300", sign(jwt.SigningMethodEdDSA, tk.Private, tk.ID, claims(set("exp", 1e300))), 401},
		{"header of 7,000 dots", strings.Repeat(".", 7000), 401},
		{"8 KiB of dots after a valid header", parts[0] + strings.Repeat(".", 8<<10), 401},
		{"token over 8 KiB", sign(jwt.SigningMethodEdDSA, tk.Private, tk.ID, claims(set("pad", strings.Repeat("x", 9000)))), 401},
		{"payload swapped", parts[0] + "." + b64(`{"iss":"tianjin","sub":"x","aud":["`+testFederation+`"],"exp":9999999999,"iat":1,"jti":"j","scope":"admin"}`) + "." + parts[2], 401},
		{"write token of another centre", e.token(t, "hebei", auth.ScopeRead, auth.ScopeWrite), 403},
	}
	before, _ := e.node.Store().LastPosition()
	body := envelope("supply", "federation", supplyBody("令牌攻击"))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Each refusal is cheap: the slowest of 20 stays far below a second
			// (without -race, a few milliseconds).
			var slowest time.Duration
			for i := 0; i < 20; i++ {
				start := time.Now()
				r := e.do(t, req{method: "POST", path: "/v1/records", token: tc.token, body: body})
				slowest = max(slowest, time.Since(start))
				wantStatus(t, r, tc.want)
				p := r.problem(t)
				if tc.want == 401 && !strings.Contains(r.Header.Get("WWW-Authenticate"), "invalid_token") {
					t.Fatalf("WWW-Authenticate %q (%s)", r.Header.Get("WWW-Authenticate"), p.Detail)
				}
			}
			if slowest > 3*time.Second { // generous for -race on a loaded machine
				t.Errorf("slowest refusal took %v", slowest)
			}
		})
	}
	if after, _ := e.node.Store().LastPosition(); after != before {
		t.Fatalf("refused tokens changed the state: feed position %d → %d", before, after)
	}
	// The valid token of this centre writes: the refusals above were for the token.
	wantStatus(t, e.do(t, req{method: "POST", path: "/v1/records", token: valid, body: body}), http.StatusCreated)
}
