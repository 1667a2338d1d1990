package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"liandong/auth"
	"liandong/client"
	"liandong/node"
	"liandong/node/store"
	"liandong/schema"
)

const centreUsage = `liandong centre replicas       --node URL --token FILE [--json]
liandong centre add-replica    --node URL --token FILE --id CENTRE-NAME --raft-addr HOST:PORT --http URL --peer-id ID
liandong centre remove-replica --node URL --token FILE --id CENTRE-NAME
    show or change the voters of a centre's raft group through any of its replicas
    (the token needs the admin scope and must be issued by that centre)
liandong centre purge-origin   --node URL --token FILE --origin CENTRE
    stop serving the records of a centre removed from the federation (this centre only)
liandong centre audit          --node URL --token FILE [--out FILE]
    export the centre's audit log as JSON Lines, after checking its hash chain and
    every event's signature against the trust bundle the node serves
liandong centre backup         --node URL --token FILE --out FILE
    a consistent copy of a replica's state file, taken while it serves; checked before
    it is named FILE. It holds the centre's personal data and audit log.
liandong centre restore        --from FILE (--config FILE | --data DIR --centre ID)
    lay a backup into an empty data directory (offline; see 'liandong centre restore -h')
LIANDONG_NODE and LIANDONG_TOKEN_FILE stand in for --node and --token; --timeout (default 2m)
bounds the wait for a node to begin answering (backup: for a probe of it, as the node
copies its state file before it answers).`

func cmdCentre(ctx context.Context, args []string, stdout io.Writer) (err error) {
	if len(args) == 0 {
		return usagef("want a subcommand:\n%s", centreUsage)
	}
	switch args[0] {
	case "replicas", "add-replica", "remove-replica", "purge-origin", "audit", "backup":
	case "restore":
		return cmdRestore(args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, centreUsage)
		return nil
	default:
		return usagef("unknown subcommand %q:\n%s", args[0], centreUsage)
	}
	fs := flag.NewFlagSet("centre "+args[0], flag.ContinueOnError)
	node := fs.String("node", os.Getenv("LIANDONG_NODE"), "API URL of any replica of the centre, e.g. http://127.0.0.1:8702 (default $LIANDONG_NODE)")
	tokenFile := fs.String("token", os.Getenv("LIANDONG_TOKEN_FILE"), "file holding an admin token of the centre (default $LIANDONG_TOKEN_FILE)")
	id := fs.String("id", "", "replica id, <centre>-<name>")
	raftAddr := fs.String("raft-addr", "", "the new replica's raft address")
	httpURL := fs.String("http", "", "the new replica's API URL")
	peerID := fs.String("peer-id", "", "the new replica's libp2p peer id (listed in the trust bundle)")
	asJSON := fs.Bool("json", false, "print JSON")
	out := fs.String("out", "", "audit: write the events to this file instead of stdout; backup: the backup file")
	origin := fs.String("origin", "", "purge-origin: the removed centre")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up on a node that has not begun to answer within this long (an audit export's transfer may take longer; backup: bounds a probe of the node, then waits while it copies its state file)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	if *node == "" || *tokenFile == "" {
		return usagef("--node URL and --token FILE are required (or LIANDONG_NODE and LIANDONG_TOKEN_FILE)\n%s", centreUsage)
	}
	if err := checkNodeURL(*node); err != nil {
		return err
	}
	tok, err := os.ReadFile(*tokenFile)
	if err != nil {
		return fmt.Errorf("read token: %w", err)
	}
	c := client.New(*node, strings.TrimSpace(string(tok)))
	c.HTTP = answerBoundClient(*timeout)
	defer func() {
		var ue *url.Error
		if errors.As(err, &ue) && ue.Timeout() {
			// Also a connection that timed out (the dialer's 30 s), so the
			// message does not claim which bound ran out.
			// Named by the URL that timed out: a backup goes on to the
			// leader a follower redirects it to.
			who := *node
			if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
				who = apiBase(u)
			}
			err = fmt.Errorf("%s timed out (--timeout %v bounds the wait for its answer to begin): is it overloaded or cut off? (liandong status --node URL tells; raise --timeout to wait longer): %w", who, *timeout, err)
		}
	}()
	switch args[0] {
	case "replicas":
		list, err := c.Replicas(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(map[string]any{"replicas": list})
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		// FEATURES is what the leader last heard each replica's build
		// announce: a write that needs one (If-None-Match: * over a deleted
		// record) waits until every replica lists it.
		fmt.Fprintln(tw, "REPLICA\tROLE\tRAFT\tHTTP\tPEER\tFEATURES")
		for _, r := range list {
			role := strings.ToLower(r.Suffrage)
			if r.Leader {
				role = "leader"
			}
			features := r.Features
			if features == "" {
				features = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, role, r.RaftAddr, r.HTTP, r.PeerID, features)
		}
		return tw.Flush()
	case "add-replica":
		if *id == "" || *raftAddr == "" || *httpURL == "" || *peerID == "" {
			return usagef("add-replica needs --id, --raft-addr, --http and --peer-id")
		}
		if err := c.AddReplica(ctx, client.Replica{ID: *id, RaftAddr: *raftAddr, HTTP: *httpURL, PeerID: *peerID}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added %s\n", *id)
		return nil
	case "audit":
		return exportAudit(ctx, c, *out, stdout)
	case "backup":
		// The node copies its whole state file to its own disk before it
		// sends the answer's headers (node.Backup), which for a large file
		// takes longer than any fixed bound: --timeout bounds a probe of the
		// node instead, so a wedged one is still told apart, and the backup
		// itself waits for the copy (interrupt it to give up). A follower
		// redirects the backup to its leader, which is probed as well: the
		// follower answering says nothing of the leader (review 122).
		c.HTTP = &http.Client{Transport: &probingTransport{probe: c.HTTP, next: http.DefaultTransport}}
		return takeBackup(ctx, c, *out, stdout)
	case "purge-origin":
		if *origin == "" {
			return usagef("purge-origin needs --origin CENTRE")
		}
		n, err := c.PurgeOrigin(ctx, *origin)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d records of %s withdrawn from service at this centre\n", n, *origin)
		return nil
	case "remove-replica":
		if *id == "" {
			return usagef("remove-replica needs --id")
		}
		if err := c.RemoveReplica(ctx, *id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s\n", *id)
		return nil
	}
	return usagef("unknown subcommand %q:\n%s", args[0], centreUsage)
}

// answerBoundClient gives up on a node that accepts the connection but has
// not sent the headers of its answer within timeout (a wedged process, or a
// network that lets the request through one way only): without it these
// commands waited for ever. It bounds the wait for the answer to begin, not
// the answer, so an audit export still streams to its end (a backup's
// answer begins only once the node has copied its state file: see
// cmdCentre's backup, which this bounds only a probe of). The node itself
// gives up on a membership change well within two minutes (its write
// timeout), so the default does not cut a slow but working one short.
func answerBoundClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = timeout
	return &http.Client{Transport: tr}
}

// probingTransport sends each request on, through next, once the node it
// goes to (apiBase: scheme, host and any path the API sits under) has begun
// to answer a probe of its /healthz through probe, whose bound is --timeout:
// a backup's own answer may take longer than any fixed bound to begin, a
// wedged node's probe does not answer at all. Each node is probed once, the
// first time a request goes there (a follower, then the leader it redirects
// to).
type probingTransport struct {
	probe *http.Client
	next  http.RoundTripper

	mu     sync.Mutex
	probed map[string]bool
}

func (p *probingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// With the path prefix: behind a proxy at https://gw/tianjin-1 the
	// gateway answers https://gw/healthz itself, and several nodes share the
	// host (review 123).
	server := apiBase(req.URL)
	p.mu.Lock()
	done := p.probed[server]
	p.mu.Unlock()
	if !done {
		resp, err := p.healthz(req.Context(), server)
		if err != nil {
			if req.Body != nil {
				req.Body.Close() // a RoundTripper closes the body, even on an error
			}
			return nil, err // a *url.Error: its Timeout says the bound ran out
		}
		// Any answer will do (a 503 while the node is not ready is one):
		// the server is not wedged. The body is not waited for.
		resp.Body.Close()
		p.mu.Lock()
		if p.probed == nil {
			p.probed = map[string]bool{}
		}
		p.probed[server] = true
		p.mu.Unlock()
	}
	return p.next.RoundTrip(req)
}

// apiBase is the base URL of the node API that u, a request of it, goes to:
// scheme, host and the path the API sits under, if any (client.Client joins
// its BaseURL and the API path; a leader's Location is its advertise_http
// and the path), without the API path (/v1/…, /healthz).
func apiBase(u *url.URL) string {
	p := u.EscapedPath()
	if i := strings.LastIndex(p, "/v1/"); i >= 0 {
		p = p[:i]
	} else {
		p = strings.TrimSuffix(p, "/healthz")
	}
	return u.Scheme + "://" + u.Host + p
}

func (p *probingTransport) healthz(ctx context.Context, server string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/healthz", nil)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", server, err)
	}
	return p.probe.Do(req)
}

// exportAudit pages through the audit log, verifies the chain from its start
// and writes one event per line.
func exportAudit(ctx context.Context, c *client.Client, outPath string, stdout io.Writer) error {
	signed, err := c.Bundle(ctx)
	if err != nil {
		return fmt.Errorf("read the node's trust bundle: %w", err)
	}
	sb, err := auth.ParseSignedBundle(signed)
	if err != nil {
		return err
	}
	bundle, err := sb.Bundle()
	if err != nil {
		return err
	}
	var events []store.AuditEvent
	for from := uint64(1); ; {
		page, next, err := c.Audit(ctx, from, 500)
		if err != nil {
			return err
		}
		for _, e := range page {
			js, err := json.Marshal(e)
			if err != nil {
				return err
			}
			var ev store.AuditEvent
			if err := json.Unmarshal(js, &ev); err != nil {
				return fmt.Errorf("audit event %d: %w", e.Seq, err)
			}
			events = append(events, ev)
		}
		if next == 0 || len(page) == 0 {
			break
		}
		from = next
	}
	if err := node.VerifyAudit(bundle, schema.Hash{}, events); err != nil {
		return fmt.Errorf("the audit log does not verify: %w", err)
	}
	w := stdout
	if outPath != "" {
		f, err := os.Create(outPath)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	enc := json.NewEncoder(w)
	for i := range events {
		if err := enc.Encode(&events[i]); err != nil {
			return err
		}
	}
	if outPath != "" {
		fmt.Fprintf(stdout, "%d audit events written to %s; hash chain and signatures verified against trust bundle v%d\n", len(events), outPath, bundle.Version)
	}
	return nil
}
