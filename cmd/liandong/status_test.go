package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"liandong/node"
	"liandong/schema"
	"liandong/sync/exchange"
)

// TestStatusAgainstFederation runs the four centres in this process and asks
// them with `liandong status`: all well gives exit 0 and every centre in the
// table; a stopped centre shows as disconnected at the others with exit 1.
func TestStatusAgainstFederation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	dir := t.TempDir()
	ctx := context.Background()
	ports, err := freeCentrePorts(len(demoCentres))
	if err != nil {
		t.Fatal(err)
	}
	servers, err := startFederation(ctx, dir, ports, 1, 0, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	cancels := make([]context.CancelFunc, len(servers))
	for i, s := range servers {
		runCtx, cancel := context.WithCancel(ctx)
		cancels[i] = cancel
		wg.Add(1)
		go func() { defer wg.Done(); s.Run(runCtx) }()
	}
	t.Cleanup(func() {
		for _, c := range cancels {
			c()
		}
		wg.Wait()
	})
	token := func(centre string) string { return filepath.Join(dir, centre, "admin.token") }
	hq, xiongan := servers[0], servers[3]

	// Until the centres have found each other, status says so; then it is clean.
	var code int
	var out string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if code, out = runCLI(t, 20*time.Second, "status", "--node", hq.URL, "--token", token("hq")); code == 0 {
			break
		}
	}
	if code != 0 {
		t.Fatalf("status of a healthy federation: exit %d\n%s", code, out)
	}
	for _, want := range []string{"federation jjj-demo", "trust bundle v1", "seen from hq", "leader hq-1", "OK: nothing needs attention",
		"hq ", "tianjin ", "hebei ", "xiongan ", "天津中心", "1/1"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}

	// JSON for scripts, asked of another centre once every centre has written
	// and hebei holds every log.
	if err := seedFederation(ctx, servers, dir, 2); err != nil {
		t.Fatal(err)
	}
	var rep statusReport
	holdsAll := func() bool {
		for _, c := range rep.Centres {
			if c.LocalSeq == 0 {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		code, out = runCLI(t, 20*time.Second, "status", "--node", servers[2].URL, "--token", token("hebei"), "--json")
		rep = statusReport{}
		if err := json.Unmarshal([]byte(out), &rep); err != nil && code == 0 {
			t.Fatalf("status --json is not JSON: %v\n%s", err, out)
		}
		if code == 0 && holdsAll() {
			break
		}
	}
	if code != 0 {
		t.Fatalf("status --json: exit %d\n%s", code, out)
	}
	if !rep.OK || rep.Centre != "hebei" || rep.Raft.Role != "leader" || rep.Raft.Leader != "hebei-1" || rep.Bundle.Version != 1 ||
		len(rep.Centres) != 4 || len(rep.Problems) != 0 {
		t.Fatalf("status --json of a healthy federation: %+v", rep)
	}
	for _, c := range rep.Centres {
		if c.Self != (c.ID == "hebei") {
			t.Errorf("centre %s: self %v", c.ID, c.Self)
		}
		if !c.Self && (len(c.Peers) != 1 || c.PeersConnected != 1 || c.LastContact == nil) {
			t.Errorf("centre %s as hebei sees it: %+v", c.ID, c)
		}
		if c.LocalSeq == 0 {
			t.Errorf("centre %s: hebei holds nothing of its log: %+v", c.ID, c)
		}
	}

	// Stop xiongan: hq's status names it, exit 1, and the message says what to do.
	cancels[3]()
	deadline := time.Now().Add(30 * time.Second)
	for ; time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		code, out = runCLI(t, 20*time.Second, "status", "--node", hq.URL, "--token", token("hq"), "--json")
		if code == 1 {
			break
		}
	}
	if code != 1 {
		t.Fatalf("status with xiongan stopped (%s): exit %d, want 1\n%s", xiongan.URL, code, out)
	}
	// runCLI mixes stdout and stderr; the JSON document comes first.
	dec := json.NewDecoder(strings.NewReader(out))
	rep = statusReport{}
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if rep.OK || len(rep.Problems) == 0 {
		t.Fatalf("no problem reported with xiongan stopped: %+v", rep)
	}
	for _, p := range rep.Problems {
		if p.Kind != "disconnected" && p.Kind != "stalled" || p.Centre != "xiongan" {
			t.Errorf("unexpected problem with xiongan stopped: %+v", p)
		}
	}
	if !strings.Contains(out, "problem") || !strings.Contains(out, "needs attention") && !strings.Contains(out, "need attention") {
		t.Errorf("exit 1 without saying why on stderr:\n%s", out)
	}
	code, out = runCLI(t, 20*time.Second, "status", "--node", hq.URL, "--token", token("hq"))
	if code != 1 || !strings.Contains(out, "xiongan") || !strings.Contains(out, "[disconnected]") && !strings.Contains(out, "[stalled]") {
		t.Errorf("table with xiongan stopped: exit %d\n%s", code, out)
	}
}

// TestStatusProblems feeds status documents of the node's real shape from a
// stub and checks every condition that needs attention, and one that does not.
func TestStatusProblems(t *testing.T) {
	// Times are taken when the stub answers, not when the table is built: a
	// slow CI machine may spend seconds between subtests. The expected texts
	// leave the last digit open for the milliseconds between answer and print.
	now := time.Now().UTC()
	at := func(ago time.Duration) *time.Time { t := time.Now().UTC().Add(-ago); return &t }
	healthy := func() *federationDoc {
		doc := statusDoc(now, 4, "hq", "tianjin", "hebei")
		doc.Sync.Peers = []exchange.PeerStatus{
			{PeerID: "12D3KooWtianjin", Member: "tianjin", Connected: true, LastContact: at(time.Second), RTTSeconds: 0.002},
			{PeerID: "12D3KooWhebei", Member: "hebei", Connected: true, LastContact: at(time.Second), RTTSeconds: 0.003},
		}
		return doc
	}
	cases := []struct {
		name  string
		edit  func(*federationDoc)
		kinds []string
		says  []string
	}{
		{"healthy; lag shorter than --max-lag", func(d *federationDoc) {
			d.Sync.Origins[1].LagEntries, d.Sync.Origins[1].LagSeconds = 5, 30
		}, nil, []string{"OK: nothing needs attention", "30.0s"}},
		{"peer disconnected", func(d *federationDoc) {
			d.Sync.Peers[0].Connected, d.Sync.Peers[0].LastContact = false, at(5*time.Minute)
			d.Sync.Peers[0].LastError = "dial backoff"
		}, []string{"disconnected"}, []string{"tianjin: peer 12D3KooWtianjin is not connected (last contact 5m0", "ago); last error: dial backoff", "DISCONNECTED"}},
		{"peer stalled", func(d *federationDoc) {
			d.Sync.Peers[1].Stalled, d.Sync.Peers[1].LastContact = true, at(40*time.Second)
		}, []string{"stalled"}, []string{"hebei: peer 12D3KooWhebei is connected but has answered nothing for 40.", "STALLED"}},
		{"lag past --max-lag", func(d *federationDoc) {
			d.Sync.Origins[2].Best.Seq, d.Sync.Origins[2].LagEntries, d.Sync.Origins[2].LagSeconds = 22, 12, 600
		}, []string{"lag"}, []string{"12 entries behind hebei's log for 10m00s"}},
		{"no raft leader", func(d *federationDoc) {
			d.Replica.State, d.Replica.Leader = "Candidate", ""
		}, []string{"no-leader"}, []string{"hq has no raft leader (replica hq-1 is candidate)", "or this replica is cut off from the others", "leader NONE"}},
		{"replica removed from its group", func(d *federationDoc) {
			d.Replica.State, d.Replica.Leader, d.Replica.Voters = "Follower", "", []string{"hq-2", "hq-3"}
		}, []string{"removed"}, []string{"replica hq-1 of hq is not among its centre's voters (hq-2,hq-3)", "stop its process"}},
		{"bundle expiring within 7 days", func(d *federationDoc) {
			d.Bundle.ExpiresAt = now.Add(3*24*time.Hour + 90*time.Minute)
		}, []string{"bundle-expiring"}, []string{"the trust bundle v4 expires on", "(in 3d01h)"}},
		{"bundle expired", func(d *federationDoc) {
			d.Bundle.ExpiresAt = now.Add(-time.Hour)
		}, []string{"bundle-expired"}, []string{"expired on"}},
		{"centre blocked by p2p.block is not a problem", func(d *federationDoc) {
			d.Sync.Block = []string{"tianjin"}
			d.Sync.Peers[0].Blocked, d.Sync.Peers[0].Connected, d.Sync.Peers[0].LastContact = true, false, nil
		}, nil, []string{"blocked (p2p.block)", "[blocked] tianjin: blocked by this node's p2p.block", "OK: nothing needs attention"}},
		{"peer revoked in the bundle is not a problem", func(d *federationDoc) {
			d.Sync.Peers[1].Revoked, d.Sync.Peers[1].Connected = true, false
		}, nil, []string{"all peers revoked", "[revoked] hebei: every peer the bundle lists for it is revoked in trust bundle v4"}},
		{"p2p.block entry naming no centre", func(d *federationDoc) {
			d.Sync.Block = []string{"tainjin"}
		}, []string{"block-unknown"}, []string{`p2p.block names "tainjin", which is no centre`}},
		{"removed centre is not a problem", func(d *federationDoc) {
			d.Members[1].Removed = true
			d.Sync.Peers[0].Connected = false
		}, nil, []string{"removed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				doc := healthy()
				tc.edit(doc)
				if r.URL.Path != "/v1/federation" || r.Header.Get("Authorization") != "Bearer tok" {
					http.Error(w, `{"title":"Unauthorized","detail":"no token"}`, http.StatusUnauthorized)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(doc)
			}))
			defer srv.Close()
			tokFile := filepath.Join(t.TempDir(), "tok")
			os.WriteFile(tokFile, []byte("tok\n"), 0o600)

			code, out := runCLI(t, 10*time.Second, "status", "--node", srv.URL, "--token", tokFile)
			wantCode := 0
			if len(tc.kinds) > 0 {
				wantCode = 1
			}
			if code != wantCode {
				t.Errorf("exit %d, want %d\n%s", code, wantCode, out)
			}
			for _, s := range tc.says {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
			_, js := runCLI(t, 10*time.Second, "status", "--node", srv.URL, "--token", tokFile, "--json")
			var rep statusReport
			if err := json.NewDecoder(strings.NewReader(js)).Decode(&rep); err != nil {
				t.Fatalf("--json: %v\n%s", err, js)
			}
			var kinds []string
			for _, p := range rep.Problems {
				kinds = append(kinds, p.Kind)
			}
			if strings.Join(kinds, ",") != strings.Join(tc.kinds, ",") || rep.OK != (len(tc.kinds) == 0) {
				t.Errorf("problems %v (ok %v), want %v\n%s", kinds, rep.OK, tc.kinds, js)
			}
		})
	}
}

// TestStatusMistakes: what goes wrong before any report gets a message saying
// what to do, and a non-zero exit.
func TestStatusMistakes(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"title":"Unauthorized","status":401,"detail":"token signature invalid"}`))
	}))
	defer refuse.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`<html>not a node</html>`))
	}))
	defer other.Close()
	tokFile := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(tokFile, []byte("garbage\n"), 0o600)

	cases := []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"node down", []string{"--node", downURL}, 1, []string{"cannot reach", "is the node running?"}},
		{"token refused", []string{"--node", refuse.URL, "--token", tokFile}, 1, []string{"refused the request", "token signature invalid", "liandong token issue"}},
		{"not a node", []string{"--node", other.URL}, 1, []string{"is --node a liandong node?"}},
		{"token file missing", []string{"--node", other.URL, "--token", "/nonexistent/tok"}, 1, []string{"read token", "--token FILE"}},
		{"not a URL", []string{"--node", "127.0.0.1:8701"}, 2, []string{"want the node's API URL"}},
		{"stray argument", []string{"--node", other.URL, "extra"}, 2, []string{`unexpected argument "extra"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCLI(t, 20*time.Second, append([]string{"status"}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, out)
			}
			for _, w := range tc.wants {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestStatusHeaderOfAnExpiredBundle: the header says the bundle expired and
// how long ago, not "(in 0µs)".
func TestStatusHeaderOfAnExpiredBundle(t *testing.T) {
	now := time.Now().UTC()
	for _, tc := range []struct {
		in   float64
		want string
	}{{-6 * 3600, "EXPIRED"}, {48 * 3600, "(in 2d00h)"}} {
		rep := statusReport{Node: "http://127.0.0.1:1", CheckedAt: now, Federation: "jjj", Centre: "hq",
			Bundle: bundleReport{Version: 11, ExpiresAt: now.Add(time.Duration(tc.in) * time.Second), ExpiresInSeconds: tc.in}}
		var buf bytes.Buffer
		if err := printStatus(&buf, rep); err != nil {
			t.Fatal(err)
		}
		if first := strings.SplitN(buf.String(), "\n", 2)[0]; !strings.Contains(first, tc.want) {
			t.Errorf("expires in %vs: header %q, want %q in it", tc.in, first, tc.want)
		}
	}
}

// TestStatusCutOnPurpose: peers the node's p2p.block or the trust bundle cut
// on purpose are shown by name, as notes, and are no problem by themselves
// (exit 0); lag on a cut centre, the other peers' outages and a p2p.block
// entry that names no centre still are (exit 1).
func TestStatusCutOnPurpose(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	base := func() *federationDoc {
		doc := statusDoc(now, 9, "hq", "tianjin", "hebei", "xiongan")
		doc.Sync.BundleVersion = 9
		doc.Sync.Peers = []exchange.PeerStatus{
			{PeerID: "12D3KooWtianjin", Member: "tianjin", Connected: true, LastContact: ago(time.Second)},
			{PeerID: "12D3KooWhebei1", Member: "hebei", Connected: true, LastContact: ago(time.Second)},
			{PeerID: "12D3KooWhebei2", Member: "hebei", Connected: true, LastContact: ago(time.Second)},
			{PeerID: "12D3KooWxiongan", Member: "xiongan", Connected: true, LastContact: ago(time.Second)},
		}
		return doc
	}
	block := func(d *federationDoc, centre string) {
		d.Sync.Block = append(d.Sync.Block, centre)
		for i := range d.Sync.Peers {
			if p := &d.Sync.Peers[i]; p.Member == centre {
				p.Blocked, p.Connected, p.LastContact = true, false, nil
			}
		}
	}
	revoke := func(d *federationDoc, i int, reason string) {
		p := &d.Sync.Peers[i]
		p.Revoked, p.RevokedReason, p.Connected, p.LastContact = true, reason, false, ago(3*time.Hour)
	}
	lag := func(d *federationDoc, centre string, seconds float64) {
		for i := range d.Sync.Origins {
			if o := &d.Sync.Origins[i]; o.Origin == centre {
				o.Best.Seq, o.LagEntries, o.LagSeconds = 30, 20, seconds
			}
		}
	}
	cases := []struct {
		name            string
		edit            func(*federationDoc)
		problems, notes []string // kinds
		says            []string
	}{
		{"tianjin blocked", func(d *federationDoc) { block(d, "tianjin") },
			nil, []string{"blocked"},
			[]string{"blocked (p2p.block)", "[blocked] tianjin: blocked by this node's p2p.block, the operator's choice: none of its 1 peer(s)",
				"if tianjin is not the centre meant, correct p2p.block", "OK: nothing needs attention"}},
		{"tianjin blocked, its log shown, short lag", func(d *federationDoc) { block(d, "tianjin"); lag(d, "tianjin", 30) },
			nil, []string{"blocked"}, []string{"OK: nothing needs attention", "30.0s"}},
		{"tianjin blocked and lagging past --max-lag", func(d *federationDoc) { block(d, "tianjin"); lag(d, "tianjin", 600) },
			[]string{"lag"}, []string{"blocked"},
			[]string{"20 entries behind tianjin's log for 10m00s", "no link of its own to tianjin (blocked by this node's p2p.block), so its entries come only through other centres"}},
		{"p2p.block names no centre (typo)", func(d *federationDoc) { d.Sync.Block = []string{"tainjin"} },
			[]string{"block-unknown"}, nil,
			[]string{`p2p.block names "tainjin", which is no centre of trust bundle v9 (hq, tianjin, hebei, xiongan), so it blocks nothing`}},
		{"xiongan's only peer revoked", func(d *federationDoc) { revoke(d, 3, "host decommissioned") },
			nil, []string{"revoked"},
			[]string{"all peers revoked", "[revoked] xiongan: every peer the bundle lists for it is revoked in trust bundle v9 (12D3KooWxiongan; reason: host decommissioned)",
				"OK: nothing needs attention"}},
		{"one of hebei's peers revoked, the other connected", func(d *federationDoc) { revoke(d, 1, "") },
			nil, []string{"revoked"},
			[]string{"ok; 1 revoked", "[revoked] hebei: peer 12D3KooWhebei1 is revoked in trust bundle v9: no node holding the bundle"}},
		{"one of hebei's peers revoked, the other down", func(d *federationDoc) {
			revoke(d, 1, "")
			d.Sync.Peers[2].Connected = false
		}, []string{"disconnected"}, []string{"revoked"},
			[]string{"DISCONNECTED; 1 revoked", "[disconnected] hebei: peer 12D3KooWhebei2 is not connected"}},
		{"tianjin blocked, xiongan down", func(d *federationDoc) {
			block(d, "tianjin")
			d.Sync.Peers[3].Connected = false
		}, []string{"disconnected"}, []string{"blocked"},
			[]string{"[disconnected] xiongan", "[blocked] tianjin"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := base()
			tc.edit(doc)
			rep := buildStatusReport(doc, "http://127.0.0.1:1", now, statusLimits{maxLag: 2 * time.Minute, bundleWarn: 7 * 24 * time.Hour})
			kinds := func(ps []problem) string {
				var out []string
				for _, p := range ps {
					out = append(out, p.Kind)
				}
				return strings.Join(out, ",")
			}
			// cmdStatus exits 1 exactly when there are problems.
			if got := kinds(rep.Problems); got != strings.Join(tc.problems, ",") || rep.OK != (len(tc.problems) == 0) {
				t.Errorf("problems %q (ok %v), want %q: %+v", got, rep.OK, tc.problems, rep.Problems)
			}
			if got := kinds(rep.Notes); got != strings.Join(tc.notes, ",") {
				t.Errorf("notes %q, want %q: %+v", got, tc.notes, rep.Notes)
			}
			var buf bytes.Buffer
			if err := printStatus(&buf, rep); err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.says {
				if !strings.Contains(buf.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, buf.String())
				}
			}
		})
	}
}

// TestStatusNodeCutFromEveryCentre: a node whose p2p.block (or the bundle's
// revocations) cuts every other centre hears no heads, so it sees no lag: it
// is cut off from the federation, and status says so (exit 1) rather than
// "nothing needs attention" (review 101).
func TestStatusNodeCutFromEveryCentre(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	doc := statusDoc(now, 9, "hq", "tianjin", "hebei")
	doc.Sync.BundleVersion = 9
	doc.Sync.Block = []string{"tianjin"}
	doc.Sync.Peers = []exchange.PeerStatus{
		{PeerID: "12D3KooWtianjin", Member: "tianjin", Blocked: true},
		{PeerID: "12D3KooWhebei", Member: "hebei", Revoked: true, RevokedReason: "rotated"},
	}
	rep := buildStatusReport(doc, "http://127.0.0.1:1", now, statusLimits{maxLag: 2 * time.Minute, bundleWarn: 7 * 24 * time.Hour})
	if rep.OK || len(rep.Problems) != 1 || rep.Problems[0].Kind != "isolated" {
		t.Fatalf("a node linked to no other centre at all: OK %v, problems %+v; notes: %+v", rep.OK, rep.Problems, rep.Notes)
	}
	// One centre still linked: the cuts are the operator's, not a problem.
	doc.Sync.Peers = append(doc.Sync.Peers, exchange.PeerStatus{PeerID: "12D3KooWhebei2", Member: "hebei", Connected: true})
	if rep := buildStatusReport(doc, "http://127.0.0.1:1", now, statusLimits{maxLag: 2 * time.Minute, bundleWarn: 7 * 24 * time.Hour}); !rep.OK {
		t.Fatalf("with hebei's second peer linked: problems %+v", rep.Problems)
	}
}

// statusDoc is /v1/federation as hq's leader answers it with bundle version
// v listing centres, every log at seq 10 here and at its best peer; no peers.
func statusDoc(now time.Time, v uint64, centres ...string) *federationDoc {
	doc := &federationDoc{Centre: "hq", PeerID: "12D3KooWhq"}
	doc.Replica = node.ReplicaStatus{ReplicaID: "hq-1", State: "Leader", Leader: "hq-1", Term: 3, Voters: []string{"hq-1"}}
	doc.Bundle.Federation, doc.Bundle.Version, doc.Bundle.ExpiresAt = "jjj", v, now.Add(90*24*time.Hour)
	for _, id := range centres {
		doc.Members = append(doc.Members, struct {
			ID      string `json:"id"`
			Name    string `json:"name"`
			NameZH  string `json:"name_zh"`
			Removed bool   `json:"removed"`
		}{ID: id, Name: id})
		doc.Sync.Origins = append(doc.Sync.Origins, exchange.OriginStatus{Origin: id,
			Local: schema.Head{Origin: id, Seq: 10}, Best: schema.Head{Origin: id, Seq: 10}})
	}
	return doc
}
