package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"liandong/node"
	"liandong/sync/exchange"
)

const statusUsage = `liandong status [--node URL] [--token FILE] [--json] [--max-lag 2m] [--bundle-warn 168h]
    the federation at a glance, as one node sees it (GET /v1/federation): every centre,
    its peers, connection, last contact, how far behind this node is on its log, the
    node's raft role and leader, the trust bundle's version and expiry.
    Exit status 0: nothing needs attention; 1: something does (a peer disconnected or
    stalled, lag for longer than --max-lag, no raft leader, the replica not ready (its
    /readyz answers 503), the bundle expiring within
    --bundle-warn, a p2p.block entry that names no centre) or the node could not be
    asked; 2: a mistake on the command line. A peer cut on purpose (its centre in the
    node's p2p.block, or its id revoked in the trust bundle) is shown as such, as a note,
    and does not by itself make the exit status 1.
    LIANDONG_NODE and LIANDONG_TOKEN_FILE stand in for --node and --token.`

// federationDoc is the body of GET /v1/federation (node/server's federation()).
type federationDoc struct {
	Centre  string             `json:"centre"`
	PeerID  string             `json:"peer_id"`
	Replica node.ReplicaStatus `json:"replica"`
	Bundle  struct {
		Federation string    `json:"federation"`
		Version    uint64    `json:"version"`
		ExpiresAt  time.Time `json:"expires_at"`
	} `json:"bundle"`
	Members []struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		NameZH  string `json:"name_zh"`
		Removed bool   `json:"removed"`
	} `json:"members"`
	Sync exchange.FederationStatus `json:"sync"`
}

// statusReport is what `liandong status --json` prints: a stable summary for
// scripts, with the problems that make the exit status non-zero.
type statusReport struct {
	Node       string         `json:"node"`
	CheckedAt  time.Time      `json:"checked_at"`
	Federation string         `json:"federation"`
	Centre     string         `json:"centre"`
	PeerID     string         `json:"peer_id"`
	Raft       raftReport     `json:"raft"`
	Bundle     bundleReport   `json:"bundle"`
	Centres    []centreReport `json:"centres"`
	// Block is the node's p2p.block as configured (absent from nodes that
	// do not report it).
	Block    []string  `json:"block,omitempty"`
	OK       bool      `json:"ok"`
	Problems []problem `json:"problems"`
	// Notes are links cut on purpose, by the node's p2p.block or the trust
	// bundle: shown so that a cut of the wrong centre is seen, but not
	// problems (kinds blocked, revoked).
	Notes []problem `json:"notes"`
}

type raftReport struct {
	Replica string   `json:"replica"`
	Role    string   `json:"role"`
	Leader  string   `json:"leader"`
	Term    uint64   `json:"term"`
	Voters  []string `json:"voters"`
}

type bundleReport struct {
	Version          uint64    `json:"version"`
	ExpiresAt        time.Time `json:"expires_at"`
	ExpiresInSeconds float64   `json:"expires_in_seconds"`
}

// centreReport is one member centre: its peers as this node sees them and this
// node's copy of its log.
type centreReport struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	NameZH  string `json:"name_zh,omitempty"`
	Self    bool   `json:"self"`
	Removed bool   `json:"removed,omitempty"`
	// Blocked: the node's p2p.block names the centre, so the node neither
	// dials nor admits its peers.
	Blocked bool `json:"blocked,omitempty"`
	// PeersRevoked counts its peers whose ids the trust bundle revokes.
	PeersRevoked int `json:"peers_revoked,omitempty"`
	// Peers are the centre's replicas other than the node asked.
	Peers          []peerReport `json:"peers"`
	PeersConnected int          `json:"peers_connected"`
	// LastContact is the newest answer from any of its peers.
	LastContact *time.Time `json:"last_contact,omitempty"`
	// The centre's log: the newest entry held here, the newest any peer claims,
	// and for how long this node has known it is behind.
	LocalSeq   uint64  `json:"local_seq"`
	BestSeq    uint64  `json:"best_seq"`
	LagEntries uint64  `json:"lag_entries"`
	LagSeconds float64 `json:"lag_seconds"`
}

type peerReport struct {
	PeerID         string     `json:"peer_id"`
	Connected      bool       `json:"connected"`
	Stalled        bool       `json:"stalled"`
	Blocked        bool       `json:"blocked,omitempty"`
	Revoked        bool       `json:"revoked,omitempty"`
	RevokedReason  string     `json:"revoked_reason,omitempty"`
	BackedOffUntil *time.Time `json:"backed_off_until,omitempty"`
	LastContact    *time.Time `json:"last_contact,omitempty"`
	RTTSeconds     float64    `json:"rtt_seconds,omitempty"`
	LastError      string     `json:"last_error,omitempty"`
}

// problem is one thing that needs an operator.
type problem struct {
	// Kind is one of disconnected, stalled, lag, no-leader, removed, not-ready,
	// bundle-expiring, bundle-expired, block-unknown; for a note, blocked or
	// revoked.
	Kind    string `json:"kind"`
	Centre  string `json:"centre,omitempty"`
	PeerID  string `json:"peer_id,omitempty"`
	Message string `json:"message"`
}

// statusLimits are the thresholds past which a state needs attention.
type statusLimits struct {
	maxLag     time.Duration
	bundleWarn time.Duration
}

// errAttention makes the exit status 1 once the report is printed.
type errAttention struct{ n int }

func (e errAttention) Error() string {
	if e.n == 1 {
		return "1 problem needs attention"
	}
	return fmt.Sprintf("%d problems need attention", e.n)
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, statusUsage); fs.PrintDefaults() }
	nodeURL := fs.String("node", envOr("LIANDONG_NODE", "http://127.0.0.1:8700"), "API URL of any node of the federation")
	tokenFile := fs.String("token", os.Getenv("LIANDONG_TOKEN_FILE"), "file holding a token with the read scope (none: anonymous)")
	asJSON := fs.Bool("json", false, "print JSON for scripts instead of a table")
	maxLag := fs.Duration("max-lag", 2*time.Minute, "lag on a centre's log for longer than this needs attention")
	bundleWarn := fs.Duration("bundle-warn", 7*24*time.Hour, "a trust bundle expiring within this needs attention")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the node")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q\n%s", fs.Arg(0), statusUsage)
	}
	if err := checkNodeURL(*nodeURL); err != nil {
		return err
	}
	if *maxLag <= 0 || *bundleWarn < 0 || *timeout <= 0 {
		return usagef("--max-lag and --timeout must be positive, --bundle-warn not negative")
	}
	token := ""
	if *tokenFile != "" {
		data, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("read token: %w (give --token FILE with a token from `liandong token issue --scope read`)", err)
		}
		token = strings.TrimSpace(string(data))
	}
	doc, err := fetchFederation(ctx, strings.TrimRight(*nodeURL, "/"), token, *timeout)
	if err != nil {
		return err
	}
	rep := buildStatusReport(doc, *nodeURL, time.Now(), statusLimits{maxLag: *maxLag, bundleWarn: *bundleWarn})
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := printStatus(stdout, rep); err != nil {
		return err
	}
	if len(rep.Problems) > 0 {
		return errAttention{len(rep.Problems)}
	}
	return nil
}

// checkNodeURL refuses a --node that is not an http:// or https:// URL: net/url
// reads 127.0.0.1:8702 as scheme "127.0.0.1" and says only "first path segment
// in URL cannot contain colon".
func checkNodeURL(u string) error {
	if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
		return nil
	}
	if !strings.Contains(u, "://") {
		return usagef("--node %q: want the node's API URL with its scheme, e.g. http://%s", u, u)
	}
	return usagef("--node %q: want the node's API URL, http:// or https://, e.g. http://127.0.0.1:8701", u)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// fetchFederation asks one node for GET /v1/federation.
func fetchFederation(ctx context.Context, base, token string, timeout time.Duration) (*federationDoc, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/federation", nil)
	if err != nil {
		return nil, usagef("--node %q: %v", base, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s did not answer within %v; is the node overloaded? (raise --timeout)", base, timeout)
		}
		return nil, fmt.Errorf("cannot reach %s: %w (is the node running? give its API URL with --node)", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s/v1/federation: %w", base, err)
	}
	return parseFederation(base, resp.StatusCode, resp.Status, body)
}

// parseFederation reads a GET /v1/federation answer of status (statusText
// as the response says it) from base.
func parseFederation(base string, status int, statusText string, body []byte) (*federationDoc, error) {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return nil, fmt.Errorf("%s refused the request (%s: %s); give --token FILE with a valid token of a member centre (`liandong token issue --scope read`)",
			base, statusText, problemDetail(body))
	case status != http.StatusOK:
		return nil, fmt.Errorf("%s/v1/federation: %s: %s", base, statusText, problemDetail(body))
	}
	var doc federationDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%s/v1/federation: not a liandong federation document (%v); is --node a liandong node?", base, err)
	}
	if doc.Centre == "" {
		return nil, fmt.Errorf("%s/v1/federation: no centre in the answer; is --node a liandong node?", base)
	}
	return &doc, nil
}

// problemDetail shortens an RFC 9457 problem body (or any body) for a message.
func problemDetail(body []byte) string {
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &p) == nil && (p.Title != "" || p.Detail != "") {
		return strings.TrimSuffix(p.Title+": "+p.Detail, ": ")
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// buildStatusReport summarises doc and lists what needs attention.
func buildStatusReport(doc *federationDoc, nodeURL string, now time.Time, lim statusLimits) statusReport {
	rep := statusReport{
		Node: nodeURL, CheckedAt: now.UTC(), Federation: doc.Bundle.Federation, Centre: doc.Centre, PeerID: doc.PeerID,
		Raft: raftReport{Replica: doc.Replica.ReplicaID, Role: strings.ToLower(doc.Replica.State), Leader: doc.Replica.Leader,
			Term: doc.Replica.Term, Voters: doc.Replica.Voters},
		Bundle:   bundleReport{Version: doc.Bundle.Version, ExpiresAt: doc.Bundle.ExpiresAt, ExpiresInSeconds: doc.Bundle.ExpiresAt.Sub(now).Seconds()},
		Centres:  []centreReport{},
		Block:    doc.Sync.Block,
		Problems: []problem{},
		Notes:    []problem{},
	}
	if rep.Federation == "" {
		rep.Federation = doc.Sync.Federation
	}
	add := func(kind, centre, peerID, format string, args ...any) {
		rep.Problems = append(rep.Problems, problem{Kind: kind, Centre: centre, PeerID: peerID, Message: fmt.Sprintf(format, args...)})
	}
	note := func(kind, centre, peerID, format string, args ...any) {
		rep.Notes = append(rep.Notes, problem{Kind: kind, Centre: centre, PeerID: peerID, Message: fmt.Sprintf(format, args...)})
	}
	// The version whose revocations the exchange applied.
	bundleVersion := doc.Sync.BundleVersion
	if bundleVersion == 0 {
		bundleVersion = doc.Bundle.Version
	}

	if doc.Replica.Leader == "" && len(doc.Replica.Voters) > 0 && !slices.Contains(doc.Replica.Voters, doc.Replica.ReplicaID) {
		add("removed", doc.Centre, "", "replica %s of %s is not among its centre's voters (%s): it was removed (`liandong centre remove-replica`) and will not have a leader again; stop its process, or add it back with `liandong centre add-replica`",
			doc.Replica.ReplicaID, doc.Centre, strings.Join(doc.Replica.Voters, ","))
	} else if doc.Replica.Leader == "" {
		add("no-leader", doc.Centre, "", "%s has no raft leader (replica %s is %s): writes through it fail until it hears one. Either the group has none (check that a majority of the centre's replicas run: `liandong centre replicas`), or this replica is cut off from the others while they go on (ask another replica with `liandong status --node`; check that the replicas reach each other's raft addresses, both ways)",
			doc.Centre, doc.Replica.ReplicaID, strings.ToLower(doc.Replica.State))
	} else if doc.Replica.NotReady != "" {
		// A leader is known, yet the replica cannot serve (its /readyz
		// answers 503): its state file failed, or it replays, catches up
		// or recovers its centre's log.
		add("not-ready", doc.Centre, "", "replica %s of %s is not ready (its /readyz answers 503): %s",
			doc.Replica.ReplicaID, doc.Centre, doc.Replica.NotReady)
	}
	switch left := doc.Bundle.ExpiresAt.Sub(now); {
	case doc.Bundle.ExpiresAt.IsZero():
	case left <= 0:
		add("bundle-expired", "", "", "the trust bundle v%d expired on %s: headquarters must sign a new version now",
			doc.Bundle.Version, doc.Bundle.ExpiresAt.UTC().Format(time.DateOnly))
	case left < lim.bundleWarn:
		add("bundle-expiring", "", "", "the trust bundle v%d expires on %s (in %s): headquarters must sign and distribute a new version",
			doc.Bundle.Version, doc.Bundle.ExpiresAt.UTC().Format(time.DateOnly), human(left))
	}

	byID := map[string]*centreReport{}
	order := []string{}
	centre := func(id string) *centreReport {
		if c, ok := byID[id]; ok {
			return c
		}
		c := &centreReport{ID: id, Self: id == doc.Centre, Peers: []peerReport{}}
		byID[id] = c
		order = append(order, id)
		return c
	}
	for _, m := range doc.Members {
		c := centre(m.ID)
		c.Name, c.NameZH, c.Removed = m.Name, m.NameZH, m.Removed
	}
	// An entry naming no member blocks nothing: most likely a typo, and the
	// centre meant is still connected.
	for _, b := range doc.Sync.Block {
		if _, ok := byID[b]; ok {
			byID[b].Blocked = true
			continue
		}
		if len(doc.Members) > 0 {
			add("block-unknown", "", "", "this node's p2p.block names %q, which is no centre of trust bundle v%d (%s), so it blocks nothing; correct the entry and restart the node",
				b, doc.Bundle.Version, strings.Join(order, ", "))
		}
	}
	for _, p := range doc.Sync.Peers {
		id := p.Member
		if id == "" {
			id = "?"
		}
		c := centre(id)
		c.Peers = append(c.Peers, peerReport{PeerID: p.PeerID, Connected: p.Connected, Stalled: p.Stalled,
			Blocked: p.Blocked, Revoked: p.Revoked, RevokedReason: p.RevokedReason,
			BackedOffUntil: p.BackedOffUntil, LastContact: p.LastContact, RTTSeconds: p.RTTSeconds, LastError: p.LastError})
		if p.Revoked {
			c.PeersRevoked++
		}
		if p.Connected {
			c.PeersConnected++
		}
		if p.LastContact != nil && (c.LastContact == nil || p.LastContact.After(*c.LastContact)) {
			c.LastContact = p.LastContact
		}
	}
	for _, o := range doc.Sync.Origins {
		c := centre(o.Origin)
		c.LocalSeq, c.BestSeq, c.LagEntries, c.LagSeconds = o.Local.Seq, o.Best.Seq, o.LagEntries, o.LagSeconds
	}
	// Bundle order first (the root lists headquarters first), then peers of
	// centres the bundle no longer lists.
	for _, id := range order {
		c := byID[id]
		rep.Centres = append(rep.Centres, *c)
		if c.Removed {
			continue
		}
		cutNotes(c, bundleVersion, note)
		for _, p := range c.Peers {
			short := shortPeer(p.PeerID)
			switch {
			case p.Blocked || p.Revoked:
				// Not dialled nor admitted on purpose: cutNotes says so.
			case !p.Connected:
				msg := fmt.Sprintf("%s: peer %s is not connected", id, short)
				if p.LastContact != nil {
					msg += fmt.Sprintf(" (last contact %s ago)", human(now.Sub(*p.LastContact)))
				} else {
					msg += " (never contacted)"
				}
				if p.BackedOffUntil != nil {
					msg += fmt.Sprintf("; backed off until %s for breaking the protocol", p.BackedOffUntil.UTC().Format(time.TimeOnly))
				}
				if p.LastError != "" {
					msg += "; last error: " + p.LastError
				}
				add("disconnected", id, p.PeerID, "%s; check that it runs and that its libp2p address in the bundle is reachable from here", msg)
			case p.Stalled:
				since := "ever"
				if p.LastContact != nil {
					since = "for " + human(now.Sub(*p.LastContact))
				}
				add("stalled", id, p.PeerID, "%s: peer %s is connected but has answered nothing %s; check its load, disk and logs",
					id, short, since)
			}
		}
		if c.LagEntries > 0 && c.LagSeconds > lim.maxLag.Seconds() {
			// Still a problem when the centre's own peers are cut: its
			// entries should then come through the other centres.
			how := "check the links to its peers and the node's apply errors"
			if len(c.Peers) > 0 && activePeers(c) == 0 {
				how = fmt.Sprintf("this node has no link of its own to %s (%s), so its entries come only through other centres: check the links to those and the node's apply errors",
					id, cutText(c))
			}
			add("lag", id, "", "%s: this node has been %d entries behind %s's log for %s (over %s); %s",
				id, c.LagEntries, id, human(seconds(c.LagSeconds)), lim.maxLag, how)
		}
	}
	// Cut on purpose link by link, but all of them: nothing arrives, so no
	// lag shows, and nothing this centre writes leaves it.
	others, linked, cut := 0, 0, false
	for _, id := range order {
		if c := byID[id]; id != rep.Centre && !c.Removed {
			others++
			if activePeers(c) > 0 {
				linked++
			}
			cut = cut || len(c.Peers) > activePeers(c)
		}
	}
	if others > 0 && linked == 0 && cut {
		add("isolated", rep.Centre, "", "this node has no link to any other centre (every other centre's peers are blocked by p2p.block or revoked in the bundle): it receives nothing, so no lag shows, and what this centre writes reaches nobody; check p2p.block and the bundle")
	}
	rep.OK = len(rep.Problems) == 0
	return rep
}

// activePeers counts c's peers that are not cut on purpose (blocked or revoked).
func activePeers(c *centreReport) int {
	n := 0
	for _, p := range c.Peers {
		if !p.Blocked && !p.Revoked {
			n++
		}
	}
	return n
}

// cutText says why none of c's peers is linked: a block, revocations, or both.
func cutText(c *centreReport) string {
	switch {
	case c.Blocked && c.PeersRevoked > 0:
		return "blocked by this node's p2p.block, and peers revoked in the trust bundle"
	case c.Blocked:
		return "blocked by this node's p2p.block"
	}
	return "its peers are revoked in the trust bundle"
}

// cutNotes notes what of c is cut on purpose: the centre blocked by the node's
// p2p.block, peers revoked in bundle v. By name, so that a block of the wrong
// centre is seen even though it is no problem.
func cutNotes(c *centreReport, v uint64, note func(kind, centre, peerID, format string, args ...any)) {
	if c.Blocked {
		switch {
		case c.Self:
			note("blocked", c.ID, "", "%s: this node's own centre is in its p2p.block: it neither dials nor admits the centre's other replicas; remove the entry unless that is meant",
				c.ID)
		case len(c.Peers) == 0:
			note("blocked", c.ID, "", "%s: blocked by this node's p2p.block (the bundle lists no peer for it)", c.ID)
		default:
			note("blocked", c.ID, "", "%s: blocked by this node's p2p.block, the operator's choice: none of its %d peer(s) is dialled or admitted, so this node has no link of its own to %s and takes its entries only through other centres; if %s is not the centre meant, correct p2p.block and restart the node",
				c.ID, len(c.Peers), c.ID, c.ID)
		}
	}
	var revoked []peerReport
	for _, p := range c.Peers {
		if p.Revoked {
			revoked = append(revoked, p)
		}
	}
	if len(revoked) == 0 {
		return
	}
	if len(revoked) == len(c.Peers) && !c.Self {
		var what []string
		for _, p := range revoked {
			what = append(what, shortPeer(p.PeerID))
		}
		for _, p := range revoked {
			if r := "reason: " + p.RevokedReason; p.RevokedReason != "" && !slices.Contains(what, r) {
				what = append(what, r)
			}
		}
		note("revoked", c.ID, "", "%s: every peer the bundle lists for it is revoked in trust bundle v%d (%s): no node holding the bundle dials or admits any of them, so it is linked to none until a bundle lists a new peer for it",
			c.ID, v, strings.Join(what, "; "))
		return
	}
	for _, p := range revoked {
		why := ""
		if p.RevokedReason != "" {
			why = " (reason: " + p.RevokedReason + ")"
		}
		note("revoked", c.ID, p.PeerID, "%s: peer %s is revoked in trust bundle v%d%s: no node holding the bundle dials or admits it",
			c.ID, shortPeer(p.PeerID), v, why)
	}
}

// printable escapes the control characters of s (C0, DEL, C1), as Go
// would quote them: the report's text comes from the node, and through it
// from peers (their errors) and the bundle (names, revocation reasons), and
// printed raw it could move a terminal's cursor, recolour or clear it, forge
// a line of the report, or shift the table's columns with a tab.
func printable(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if !unicode.IsControl(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r) // '\n', '\x1b', '\u009b'
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// printStatus writes the report as a table for a terminal. Every string of
// the report goes through printable.
func printStatus(w io.Writer, rep statusReport) error {
	p := printable
	now := rep.CheckedAt
	if left := seconds(rep.Bundle.ExpiresInSeconds); left > 0 {
		fmt.Fprintf(w, "federation %s, trust bundle v%d, expires %s (in %s)\n", p(rep.Federation), rep.Bundle.Version,
			rep.Bundle.ExpiresAt.UTC().Format(time.DateOnly), human(left))
	} else {
		fmt.Fprintf(w, "federation %s, trust bundle v%d, EXPIRED %s (%s ago)\n", p(rep.Federation), rep.Bundle.Version,
			rep.Bundle.ExpiresAt.UTC().Format(time.DateOnly), human(-left))
	}
	leader := rep.Raft.Leader
	if leader == "" {
		leader = "NONE"
	}
	fmt.Fprintf(w, "seen from %s (%s): replica %s is %s, leader %s, term %d, voters %s\n\n", p(rep.Centre), p(rep.Node),
		p(rep.Raft.Replica), p(rep.Raft.Role), p(leader), rep.Raft.Term, p(strings.Join(rep.Raft.Voters, ",")))

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CENTRE\tPEERS\tSTATE\tLAST CONTACT\tRTT\tLOG\tLAG\tLAG FOR\tNAME")
	for _, c := range rep.Centres {
		peers, state, contact, rtt := "-", "-", "-", "-"
		if len(c.Peers) > 0 || !c.Self {
			peers = fmt.Sprintf("%d/%d", c.PeersConnected, len(c.Peers))
			state = centreState(c)
			contact = lastContactText(c.LastContact, now)
			for _, p := range c.Peers {
				if p.Connected && p.RTTSeconds > 0 {
					rtt = human(seconds(p.RTTSeconds))
					break
				}
			}
		}
		if c.Self {
			state = "this node"
			if len(c.Peers) > 0 {
				state = "this node; " + centreState(c)
			}
		}
		lag, lagFor := "0", "-"
		if c.Self {
			lag = "-"
		} else if c.LagEntries > 0 {
			lag = fmt.Sprint(c.LagEntries)
			lagFor = human(seconds(c.LagSeconds))
		}
		name := c.NameZH
		if name == "" {
			name = c.Name
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", p(c.ID), peers, state, contact, rtt, c.LocalSeq, lag, lagFor, p(name))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(rep.Notes) > 0 {
		fmt.Fprintln(w, "cut on purpose (not problems):")
		for _, n := range rep.Notes {
			fmt.Fprintf(w, "  - [%s] %s\n", n.Kind, p(n.Message))
		}
	}
	if len(rep.Problems) == 0 {
		_, err := fmt.Fprintln(w, "OK: nothing needs attention")
		return err
	}
	fmt.Fprintf(w, "%s:\n", errAttention{len(rep.Problems)})
	for _, pr := range rep.Problems {
		fmt.Fprintf(w, "  - [%s] %s\n", pr.Kind, p(pr.Message))
	}
	return nil
}

// centreState is one word or a few for a centre's peers. Peers cut on purpose
// (blocked, revoked) are named, and the rest judged without them.
func centreState(c centreReport) string {
	if c.Removed {
		return "removed"
	}
	stalled, active, connected := 0, 0, 0
	for _, p := range c.Peers {
		if p.Blocked || p.Revoked {
			continue
		}
		active++
		if p.Connected {
			connected++
			if p.Stalled {
				stalled++
			}
		}
	}
	var state string
	switch {
	case len(c.Peers) == 0:
		state = "no peers listed"
		if c.Blocked {
			state += "; blocked (p2p.block)"
		}
		return state
	case active == 0 && c.Blocked:
		return "blocked (p2p.block)"
	case active == 0:
		return "all peers revoked"
	case connected == 0:
		state = "DISCONNECTED"
	case stalled > 0:
		state = "STALLED"
	case connected < active:
		state = "PARTLY CONNECTED"
	default:
		state = "ok"
	}
	if c.PeersRevoked > 0 {
		state += fmt.Sprintf("; %d revoked", c.PeersRevoked)
	}
	return state
}

func lastContactText(t *time.Time, now time.Time) string {
	if t == nil {
		return "never"
	}
	return human(now.Sub(*t)) + " ago"
}

// human writes a duration the way people read it: 850µs, 4.2ms, 1.5s, 3m12s,
// 5h07m, 364d23h.
func human(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
		fallthrough
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// shortPeer abbreviates a libp2p peer id for messages.
func shortPeer(id string) string {
	if len(id) <= 16 {
		return id
	}
	return id[:8] + "…" + id[len(id)-6:]
}
