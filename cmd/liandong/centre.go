package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

const centreUsage = `liandong centre replicas       --node URL --token FILE [--json]
liandong centre add-replica    --node URL --token FILE --id CENTRE-NAME --raft-addr HOST:PORT --http URL --peer-id ID
liandong centre remove-replica --node URL --token FILE --id CENTRE-NAME
    show or change the voters of a centre's raft group through any of its replicas
    (the token needs the admin scope and must be issued by that centre)`

func cmdCentre(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("want a subcommand:\n%s", centreUsage)
	}
	fs := flag.NewFlagSet("centre "+args[0], flag.ContinueOnError)
	node := fs.String("node", "", "API URL of any replica of the centre, e.g. http://127.0.0.1:8702")
	tokenFile := fs.String("token", "", "file holding an admin token of the centre")
	id := fs.String("id", "", "replica id, <centre>-<name>")
	raftAddr := fs.String("raft-addr", "", "the new replica's raft address")
	httpURL := fs.String("http", "", "the new replica's API URL")
	peerID := fs.String("peer-id", "", "the new replica's libp2p peer id (listed in the trust bundle)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *node == "" || *tokenFile == "" {
		return usagef("--node URL and --token FILE are required\n%s", centreUsage)
	}
	tok, err := os.ReadFile(*tokenFile)
	if err != nil {
		return fmt.Errorf("read token: %w", err)
	}
	c := &adminClient{base: strings.TrimRight(*node, "/"), token: strings.TrimSpace(string(tok))}
	switch args[0] {
	case "replicas":
		var doc struct {
			Replicas []struct {
				ID       string `json:"id"`
				RaftAddr string `json:"raft_addr"`
				HTTP     string `json:"http"`
				PeerID   string `json:"peer_id"`
				Suffrage string `json:"suffrage"`
				Leader   bool   `json:"leader"`
			} `json:"replicas"`
		}
		raw, err := c.do(ctx, http.MethodGet, "/v1/admin/replicas", nil, &doc)
		if err != nil {
			return err
		}
		if *asJSON {
			_, err := stdout.Write(raw)
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "REPLICA\tROLE\tRAFT\tHTTP\tPEER")
		for _, r := range doc.Replicas {
			role := strings.ToLower(r.Suffrage)
			if r.Leader {
				role = "leader"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, role, r.RaftAddr, r.HTTP, r.PeerID)
		}
		return tw.Flush()
	case "add-replica":
		if *id == "" || *raftAddr == "" || *httpURL == "" || *peerID == "" {
			return usagef("add-replica needs --id, --raft-addr, --http and --peer-id")
		}
		if _, err := c.do(ctx, http.MethodPost, "/v1/admin/replicas", map[string]string{
			"id": *id, "raft_addr": *raftAddr, "http": *httpURL, "peer_id": *peerID,
		}, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added %s\n", *id)
		return nil
	case "remove-replica":
		if *id == "" {
			return usagef("remove-replica needs --id")
		}
		if _, err := c.do(ctx, http.MethodDelete, "/v1/admin/replicas/"+url.PathEscape(*id), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s\n", *id)
		return nil
	}
	return usagef("unknown subcommand %q:\n%s", args[0], centreUsage)
}

// adminClient calls a node's API and turns problem answers into errors that
// carry the node's own explanation.
type adminClient struct {
	base, token string
}

func (c *adminClient) do(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		js, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(js)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w (is the node running at %s?)", method, path, err, c.base)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		var p struct {
			Detail string `json:"detail"`
		}
		if json.Unmarshal(raw, &p) == nil && p.Detail != "" {
			return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, p.Detail)
		}
		return nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return raw, nil
}
