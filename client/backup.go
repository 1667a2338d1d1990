package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Backup is what GET /v1/admin/backup said of the copy it sent.
type Backup struct {
	Centre       string
	AppliedIndex uint64
	OwnSeq       uint64
	// Size is the copy's length as announced; Backup returns an error
	// wrapping ErrBrokenAnswer unless that many bytes arrived.
	Size int64
}

// Backup copies the state file of the node's centre into w (admin scope): a
// consistent copy of its leader's, taken while it serves, and recorded in the
// centre's audit log. It holds the centre's personal data.
func (c *Client) Backup(ctx context.Context, w io.Writer) (Backup, error) {
	var b Backup
	req, err := c.request(ctx, http.MethodGet, "/v1/admin/backup", nil, nil)
	if err != nil {
		return b, err
	}
	// A follower redirects to its leader, which alone can audit the copy;
	// the redirect is followed here, once, so that the token goes along
	// (net/http drops Authorization on a redirect to another port).
	hc := *c.httpClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		return b, fmt.Errorf("GET /v1/admin/backup: %w", err)
	}
	if resp.StatusCode == http.StatusTemporaryRedirect {
		loc, lerr := resp.Location()
		resp.Body.Close()
		if lerr != nil || (loc.Scheme != "http" && loc.Scheme != "https") {
			return b, fmt.Errorf("GET /v1/admin/backup: redirected to %q: %v", resp.Header.Get("Location"), lerr)
		}
		if req.URL.Scheme == "https" && loc.Scheme != "https" {
			// A leader recorded at an http URL while its followers serve
			// https (a rollout half done, a typo in advertise_http).
			return b, fmt.Errorf("GET /v1/admin/backup: redirected from https to %s: the token is not sent in clear; fix the leader's advertise_http, or ask it directly", loc)
		}
		req = req.Clone(ctx)
		req.URL, req.Host = loc, ""
		if resp, err = hc.Do(req); err != nil {
			return b, fmt.Errorf("GET %s: %w", loc, err)
		}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := readProblem(resp)
		if p, ok := err.(*Problem); ok && resp.StatusCode == http.StatusNotFound && strings.HasPrefix(p.Detail, "no such resource") {
			// The route itself is unknown: a build from before backups.
			return b, fmt.Errorf("%w (the node at %s runs a build from before backups: upgrade it, or ask a replica that runs this one)", err, resp.Request.URL.Host)
		}
		return b, err
	}
	b.Centre = resp.Header.Get("Liandong-Backup-Centre")
	b.AppliedIndex, _ = strconv.ParseUint(resp.Header.Get("Liandong-Backup-Applied-Index"), 10, 64)
	b.OwnSeq, _ = strconv.ParseUint(resp.Header.Get("Liandong-Backup-Own-Seq"), 10, 64)
	b.Size = resp.ContentLength
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return b, fmt.Errorf("GET /v1/admin/backup: %w after %d bytes: %w", ErrBrokenAnswer, n, err)
	}
	if b.Size < 0 || n != b.Size {
		return b, fmt.Errorf("GET /v1/admin/backup: %w: %d bytes of %d", ErrBrokenAnswer, n, b.Size)
	}
	return b, nil
}
