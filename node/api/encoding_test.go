package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"liandong/auth"
)

// Content-Encoding is a list (RFC 9110 8.4), and may come as several header
// lines: a body labelled "identity" then "br" is still labelled br, and must be
// refused as a single "br" line is.
// TestContentEncodingOnAnyLineRefused: a coding other than identity on a
// second Content-Encoding line, or after a comma, is refused as on the first.
func TestContentEncodingOnAnyLineRefused(t *testing.T) {
	e := newFakeEnv(t, &fakeService{})
	tok := e.token(t, "tianjin", auth.ScopeWrite)
	body, _ := json.Marshal(envelope("supply", "federation", supplyBody("压缩")))
	rq, _ := http.NewRequest("POST", e.srv.URL+"/v1/records", bytes.NewReader(body))
	rq.Header.Set("Authorization", "Bearer "+tok)
	rq.Header.Set("Content-Type", "application/json")
	rq.Header.Add("Content-Encoding", "identity")
	rq.Header.Add("Content-Encoding", "br")
	res, err := e.cli.Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("Content-Encoding: identity + Content-Encoding: br: %d, want 415", res.StatusCode)
	}
	for _, tc := range []struct {
		lines []string
		want  string
	}{{[]string{"identity, gzip"}, "gzip"}, {[]string{"identity"}, ""}, {nil, ""}, {[]string{" Identity ", "IDENTITY"}, ""}} {
		h := http.Header{}
		for _, l := range tc.lines {
			h.Add("Content-Encoding", l)
		}
		if got := encoded(h); got != tc.want {
			t.Errorf("Content-Encoding %q: %q, want %q", tc.lines, got, tc.want)
		}
	}
}
