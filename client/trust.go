package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Published is the node's answer to PublishBundle.
type Published struct {
	Federation string    `json:"federation"`
	Version    uint64    `json:"version"`
	Installed  bool      `json:"installed"` // false: the node already held this version
	ExpiresAt  time.Time `json:"expires_at"`
}

// PublishBundle offers a signed trust bundle (the file `liandong federation
// sign` writes) to the node, which installs it when it is newer and has enough
// valid signatures; sync then spreads it (admin scope).
func (c *Client) PublishBundle(ctx context.Context, signed []byte) (*Published, error) {
	req, err := c.request(ctx, http.MethodPost, "/v1/admin/bundle", nil, nil)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(signed))
	req.ContentLength = int64(len(signed))
	req.Header.Set("Content-Type", "application/json")
	var out Published
	if _, err := c.do(req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Bundle returns the signed trust bundle the node runs on, as distributed.
func (c *Client) Bundle(ctx context.Context) ([]byte, error) {
	req, err := c.request(ctx, http.MethodGet, "/v1/bundle", nil, nil)
	if err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if _, err := c.do(req, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// AuditEvent is one event of a centre's audit log.
type AuditEvent struct {
	Seq    uint64    `json:"seq"`
	At     time.Time `json:"at"`
	Centre string    `json:"centre"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Detail string    `json:"detail,omitempty"`
	Prev   string    `json:"prev"`
	KeyID  string    `json:"kid"`
	Sig    []byte    `json:"sig"`
}

// Audit returns up to limit events of the centre's audit log from seq from on,
// and the seq to ask for next (0 at the end) (admin scope).
func (c *Client) Audit(ctx context.Context, from uint64, limit int) ([]AuditEvent, uint64, error) {
	q := url.Values{}
	if from > 0 {
		q.Set("from", strconv.FormatUint(from, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	req, err := c.request(ctx, http.MethodGet, "/v1/audit", q, nil)
	if err != nil {
		return nil, 0, err
	}
	var out struct {
		Events []AuditEvent `json:"events"`
		Next   uint64       `json:"next"`
	}
	if _, err := c.do(req, &out); err != nil {
		return nil, 0, fmt.Errorf("audit log: %w", err)
	}
	return out.Events, out.Next, nil
}

// PurgeOrigin asks the node to stop serving the records of a centre that left
// the federation, and returns how many it withdrew (admin scope).
func (c *Client) PurgeOrigin(ctx context.Context, origin string) (int, error) {
	req, err := c.request(ctx, http.MethodPost, "/v1/admin/purge/"+url.PathEscape(origin), nil, nil)
	if err != nil {
		return 0, err
	}
	var out struct {
		Purged int `json:"purged"`
	}
	if _, err := c.do(req, &out); err != nil {
		return 0, err
	}
	return out.Purged, nil
}
