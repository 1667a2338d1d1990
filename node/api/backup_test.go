package api

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"liandong/auth"
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
