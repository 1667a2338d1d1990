package integration

import (
	"encoding/base64"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lclient "liandong/client"
)

// TestLostDataDirRecoversOwnLog: tianjin loses everything but its keys, bundle
// and token (a new disk). On restart it is not ready and refuses writes until it
// has pulled its own log back from its peers; then it continues that log, so
// the federation converges without a fork.
func TestLostDataDirRecoversOwnLog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	f := newFederation(t, fedOptions{})
	var recs []envelope
	for i := 0; i < 5; i++ {
		recs = append(recs, f.create(1, "supply", "federation", supplyBody("天津 成果")))
	}
	before := f.waitConverged(30 * time.Second)
	// A partner that mirrors tianjin's feed holds a cursor from before the loss.
	partner := lclient.New(f.urls[1], f.clients[1].token)
	_, oldCursor, err := partner.Changes(t.Context(), "", lclient.FeedFilter{}, 500, 0)
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(oldCursor); err != nil || !strings.Contains(string(raw), ".") {
		t.Fatalf("tianjin's cursor %q (%q) does not name its feed", oldCursor, raw)
	}
	f.loseState(1)
	f.start(1)
	// Once the API answers, a write is refused (503) until the own log is back,
	// or, if recovery already finished, accepted as the log's next entry.
	deadline := time.Now().Add(30 * time.Second)
	for status(f.clients[1], "/healthz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("tianjin did not come up:\n%s", f.procs[1].output)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var early envelope
	code, err := f.clients[1].do(t.Context(), http.MethodPost, "/v1/records", map[string]any{
		"catalogue": "supply", "visibility": "federation", "body": supplyBody("太早"),
	}, &early)
	switch {
	case code == http.StatusServiceUnavailable:
		t.Logf("write during recovery refused: %v", err)
	case err == nil:
		t.Logf("recovery finished before the first write (%s v%d)", early.ID, early.Version)
		recs = append(recs, early)
	default:
		t.Fatalf("write during recovery: %d %v", code, err)
	}
	waitReady(t, f.procs[1], f.urls[1], 60*time.Second)
	for _, r := range recs {
		f.waitRecord(1, r.ID, r.Version, false, 10*time.Second)
	}
	seq := func(h map[string]string) string { s, _, _ := strings.Cut(h["tianjin"], "/"); return s }
	h := f.waitConverged(30 * time.Second)
	if want := map[bool]string{true: "6", false: "5"}[early.ID != ""]; seq(h) != want || (early.ID == "" && h["tianjin"] != before["tianjin"]) {
		t.Fatalf("after recovery tianjin's own head is %q (was %q before the loss)", h["tianjin"], before["tianjin"])
	}
	// The rebuilt feed counts positions anew: the partner's cursor is refused
	// (it would skip changes), and reading from the beginning has every record.
	// (503 until the new group has named its feed: a moment after it leads.)
	var perr *lclient.Problem
	for range 50 {
		_, _, err = partner.Changes(t.Context(), oldCursor, lclient.FeedFilter{}, 500, 0)
		if !errors.As(err, &perr) || perr.Status != http.StatusServiceUnavailable {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !lclient.IsFeedReset(err) {
		t.Fatalf("the cursor from before the loss: %v, want a feed reset", err)
	}
	changes, _, err := partner.Changes(t.Context(), "", lclient.FeedFilter{}, 500, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range changes {
		seen[c.Record.ID] = true
	}
	for _, r := range recs {
		if !seen[r.ID] {
			t.Errorf("the rebuilt feed lacks %s", r.ID)
		}
	}
	// The next write continues the log; everyone takes it.
	next := f.create(1, "supply", "federation", supplyBody("恢复之后"))
	f.waitRecord(0, next.ID, next.Version, false, 30*time.Second)
	f.waitConverged(30 * time.Second)
}

// TestBackupRestoreRecoversLaterEntries: tianjin loses its data directory and
// is restored from a backup `centre backup` took while it served. What it
// signed after the backup comes back from its peers before it writes again,
// so its next write continues the log the federation holds (no fork); a
// record it kept private after the backup is lost, as deploy/README.md says.
func TestBackupRestoreRecoversLaterEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	f := newFederation(t, fedOptions{})
	var recs []envelope
	for range 3 {
		recs = append(recs, f.create(1, "supply", "federation", supplyBody("天津 备份之前")))
	}
	kept := f.create(1, "supply", "private", supplyBody("天津 私有 备份之前"))
	f.waitConverged(30 * time.Second)
	backup := filepath.Join(t.TempDir(), "tianjin.db")
	token := filepath.Join(f.dir, "tianjin", "admin.token")
	out := liandongCLI(t, false, "centre", "backup", "--node", f.urls[1], "--token", token, "--out", backup)
	if !strings.Contains(out, "own log to seq 3") {
		t.Fatalf("centre backup:\n%s", out)
	}
	for range 2 {
		recs = append(recs, f.create(1, "supply", "federation", supplyBody("天津 备份之后")))
	}
	lost := f.create(1, "supply", "private", supplyBody("天津 私有 备份之后"))
	before := f.waitConverged(30 * time.Second)

	f.restoreLost(1, backup, "own log to seq 3", recs)
	f.waitRecord(1, kept.ID, kept.Version, false, 10*time.Second)
	if code, _ := f.clients[1].do(t.Context(), http.MethodGet, "/v1/records/"+lost.ID, nil, nil); code != http.StatusNotFound {
		t.Fatalf("a record kept private after the backup: %d after the restore, want 404", code)
	}
	if h := f.waitConverged(30 * time.Second); h["tianjin"] != before["tianjin"] {
		t.Fatalf("tianjin's own head %q after the restore, %q before the loss", h["tianjin"], before["tianjin"])
	}
	next := f.create(1, "supply", "federation", supplyBody("恢复之后"))
	for i := range centreIDs {
		f.waitRecord(i, next.ID, next.Version, false, 30*time.Second)
	}
	f.waitConverged(30 * time.Second)
}

// restoreLost loses centre i's state, lays backup into its data directory
// (the CLI saying want), starts it and waits until it holds recs again, which
// it gets back from its peers.
func (f *federation) restoreLost(i int, backup, want string, recs []envelope) {
	f.t.Helper()
	f.loseState(i)
	out := liandongCLI(f.t, false, "centre", "restore", "--from", backup, "--config", f.configs[i])
	if !strings.Contains(out, want) {
		f.t.Fatalf("centre restore:\n%s", out)
	}
	f.start(i)
	waitReady(f.t, f.procs[i], f.urls[i], 60*time.Second)
	for _, r := range recs {
		f.waitRecord(i, r.ID, r.Version, false, 30*time.Second)
	}
}
