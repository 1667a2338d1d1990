package api

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liandong/auth"
	lclient "liandong/client"
	"liandong/node"
	"liandong/node/store"
)

// TestBackup: an admin gets a consistent copy of the state file, with what it
// holds in its headers, and the copy is audited; other scopes and other
// centres' admins are refused.
func TestBackup(t *testing.T) {
	e := newEnv(t, false)
	e.create(t, "supply", "federation", supplyBody("共享"))
	rec := e.create(t, "supply", "private", supplyBody("备份"))
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"anonymous", "", http.StatusUnauthorized},
		{"read and write", e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII), http.StatusForbidden},
		{"another centre's admin", e.token(t, "hebei", auth.ScopeAdmin), http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, req{method: http.MethodGet, path: "/v1/admin/backup", token: tc.token})
			wantStatus(t, r, tc.want)
			r.problem(t)
		})
	}
	r := e.do(t, req{method: http.MethodGet, path: "/v1/admin/backup", token: e.token(t, "tianjin", auth.ScopeAdmin)})
	wantStatus(t, r, http.StatusOK)
	if r.Header.Get(BackupCentreHeader) != "tianjin" || r.Header.Get(BackupOwnSeqHeader) != "1" || r.ContentLength != int64(len(r.body)) {
		t.Fatalf("headers %v, %d bytes", r.Header, len(r.body))
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, r.body, 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := store.Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if applied, _ := strconv.ParseUint(r.Header.Get(BackupAppliedHeader), 10, 64); info.Centre != "tianjin" || info.Records != 2 || info.AppliedIndex != applied {
		t.Fatalf("the copy holds %+v; headers said applied index %d", info, applied)
	}
	// The copy holds the record as stored, personal data and all.
	st, err := store.Open(path, store.Options{Centre: "tianjin"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.Get(rec.ID)
	if err != nil || got.Visibility != "private" {
		t.Fatalf("%s in the copy: %v, %v", rec.ID, got, err)
	}
	events, err := e.node.AuditLog(context.Background(), 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 || events[len(events)-1].Action != "state.backup" {
		t.Fatalf("audit log after a backup: %+v", events)
	}
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestBackupAtAFollowerGoesToTheLeader: a follower cannot append to the
// audit log, so it redirects a backup to its leader (307), and the client
// follows with its token; the copy is audited there (review 101).
func TestBackupAtAFollowerGoesToTheLeader(t *testing.T) {
	leaderRaft := freeLoopbackAddr(t)
	e := newEnv(t, false, func(cfg *node.Config, _ *Options) {
		cfg.ReplicaID = "tianjin-1"
		cfg.RaftAddr = leaderRaft
	})
	e.create(t, "supply", "private", supplyBody("备份"))

	reg := prometheus.NewRegistry()
	cfg := node.DefaultConfig("tianjin", t.TempDir())
	cfg.ReplicaID = "tianjin-2"
	cfg.RaftAddr = freeLoopbackAddr(t)
	cfg.Bootstrap = false
	cfg.RecordKey = e.recordKey
	cfg.Bundle = e.bundle
	cfg.Registerer = reg
	follower, err := node.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { follower.Close() })
	ctx := context.Background()
	// The test's bundle lists no peers; the replica check wants one.
	b := e.node.Bundle()
	for i := range b.Members {
		if b.Members[i].ID == "tianjin" {
			b.Members[i].Peers = append(b.Members[i].Peers, auth.Peer{ID: "12D3KooWreview"})
		}
	}
	if err := e.node.RegisterSelf(ctx, store.Replica{RaftAddr: leaderRaft, HTTP: e.srv.URL}); err != nil {
		t.Fatal(err)
	}
	if err := e.node.AddReplica(ctx, store.Replica{ID: "tianjin-2", RaftAddr: cfg.RaftAddr, HTTP: "http://127.0.0.1:1", PeerID: "12D3KooWreview"}); err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Service:    follower,
		Verifier:   &auth.TokenVerifier{Federation: testFederation, Bundle: follower.Bundle},
		Authorizer: &auth.Authorizer{Centre: "tianjin"},
		Registerer: reg,
		Gatherer:   reg,
		Logger:     testLogger(t),
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	// Wait for the follower to have applied what the leader holds.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		l, _, _ := e.node.Store().AppliedIndex()
		f, _, _ := follower.Store().AppliedIndex()
		if f >= l {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("follower did not catch up")
		}
	}
	for deadline := time.Now().Add(10 * time.Second); follower.LeaderHTTP() != e.srv.URL; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the follower knows its leader at %q, not %q", follower.LeaderHTTP(), e.srv.URL)
		}
	}
	token := e.token(t, "tianjin", auth.ScopeAdmin)
	r := doHTTP(t, &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, srv.URL,
		req{method: http.MethodGet, path: "/v1/admin/backup", token: token})
	wantStatus(t, r, http.StatusTemporaryRedirect)
	if loc := r.Header.Get("Location"); loc != e.srv.URL+"/v1/admin/backup" {
		t.Fatalf("redirected to %q", loc)
	}
	var copied bytes.Buffer
	got, err := lclient.New(srv.URL, token).Backup(ctx, &copied)
	if err != nil || got.Centre != "tianjin" || int64(copied.Len()) != got.Size {
		t.Fatalf("backup through the follower: %+v, %d bytes, %v", got, copied.Len(), err)
	}
	events, err := e.node.AuditLog(ctx, 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 || events[len(events)-1].Action != "state.backup" {
		t.Fatalf("a backup asked of a follower left no state.backup event at the leader: %+v", events)
	}
}

// cutWriter takes the header and the first write, then fails: a client that
// read most of the copy and went away.
type cutWriter struct {
	h      http.Header
	writes int
	bytes  int
}

func (w *cutWriter) Header() http.Header { return w.h }
func (w *cutWriter) WriteHeader(int)     {}
func (w *cutWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.writes > 1 {
		return 0, net.ErrClosed
	}
	w.bytes += len(p)
	return len(p), nil
}

// TestCutBackupIsAudited: a client that received part of the copy (here the
// first 32 KB; it could be all but the last byte) holds personal data: the
// copy is audited before the first byte goes (review 101).
func TestCutBackupIsAudited(t *testing.T) {
	e := newEnv(t, false)
	e.create(t, "supply", "private", supplyBody("备份"))
	hr := httptest.NewRequest(http.MethodGet, "/v1/admin/backup", nil)
	hr.Header.Set("Authorization", "Bearer "+e.token(t, "tianjin", auth.ScopeAdmin))
	w := &cutWriter{h: http.Header{}}
	func() {
		defer func() { recover() }() // an aborted answer panics with http.ErrAbortHandler
		e.h.ServeHTTP(w, hr)
	}()
	if w.bytes == 0 {
		t.Fatal("nothing was sent")
	}
	events, err := e.node.AuditLog(context.Background(), 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if ev.Action == "state.backup" {
			return
		}
	}
	t.Fatalf("%d bytes of the state file went out; no state.backup event: %+v", w.bytes, events)
}

// TestBackupRefusedForSpace: a backup refused for want of room for its copy
// reaches the operator as a 507 that says what was refused and how much is
// free, not that the centre's writes are refused: they are not (review 103).
func TestBackupRefusedForSpace(t *testing.T) {
	err := fmt.Errorf("backup: copy the state file: %w", fmt.Errorf("%w: a backup needs a copy of the state file (%d bytes) and room to write beside it in %s, and %.0f bytes are free there",
		node.ErrNoRoomForBackup, 1<<30, "/var/lib/liandong", float64(1<<20)))
	p := toProblem(err, "req-1")
	if p.Status != http.StatusInsufficientStorage {
		t.Fatalf("status %d, want 507", p.Status)
	}
	if strings.Contains(p.Detail, "writes are refused") || !strings.Contains(p.Detail, "bytes are free") {
		t.Fatalf("a refused backup answers %q", p.Detail)
	}
}
