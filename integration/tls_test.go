package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReplicasOverTLS: three replicas whose APIs serve HTTPS with a private
// CA's certificates join through https://, and a follower forwards a write to
// its leader over TLS (tls.ca); plain HTTP is not served.
func TestReplicasOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes")
	}
	g := newCentreGroupWith(t, 3, groupOptions{tls: true})
	leader := g.leader(-1)
	follower := (leader + 1) % 3
	var rec envelope
	if code, err := g.clients[follower].do(t.Context(), http.MethodPost, "/v1/records", map[string]any{
		"catalogue": "supply", "visibility": "federation", "body": supplyBody("经由 TLS 转发"),
	}, &rec); err != nil || code != http.StatusCreated {
		t.Fatalf("write at follower %s over TLS: %d %v", g.ids[follower], code, err)
	}
	for i := range g.clients {
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, _ := g.clients[i].do(t.Context(), http.MethodGet, "/v1/records/"+rec.ID, nil, nil)
			if code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s at %s: %d", rec.ID, g.ids[i], code)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	plain := strings.Replace(g.urls[0], "https://", "http://", 1)
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(plain + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered 200 where TLS is configured")
		}
	}
}
