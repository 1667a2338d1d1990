package client

import (
	"context"
	"net/http"
	"net/url"
)

// Replica is one voter of a centre's raft group, as GET /v1/admin/replicas shows it.
type Replica struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTP     string `json:"http"`
	PeerID   string `json:"peer_id,omitempty"`
	// Features is what the replica's build announced, as its group's leader
	// recorded it (comma-separated); ignored by AddReplica.
	Features string `json:"features,omitempty"`
	Suffrage string `json:"suffrage,omitempty"`
	Leader   bool   `json:"leader,omitempty"`
}

// Replicas lists the voters of the node's centre (admin scope).
func (c *Client) Replicas(ctx context.Context) ([]Replica, error) {
	req, err := c.request(ctx, http.MethodGet, "/v1/admin/replicas", nil, nil)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Replicas []Replica `json:"replicas"`
	}
	if _, err := c.do(req, &doc); err != nil {
		return nil, err
	}
	return doc.Replicas, nil
}

// AddReplica asks the centre's group to add r as a voter (admin scope).
func (c *Client) AddReplica(ctx context.Context, r Replica) error {
	req, err := c.request(ctx, http.MethodPost, "/v1/admin/replicas", nil,
		Replica{ID: r.ID, RaftAddr: r.RaftAddr, HTTP: r.HTTP, PeerID: r.PeerID})
	if err != nil {
		return err
	}
	_, err = c.do(req, nil)
	return err
}

// RemoveReplica removes the voter id from the centre's group (admin scope).
func (c *Client) RemoveReplica(ctx context.Context, id string) error {
	req, err := c.request(ctx, http.MethodDelete, "/v1/admin/replicas/"+url.PathEscape(id), nil, nil)
	if err != nil {
		return err
	}
	_, err = c.do(req, nil)
	return err
}
