package api

import (
	"net/http"
	"slices"
	"strconv"

	"liandong/auth"
	"liandong/node"
	"liandong/schema"
)

// healthz is 200 while the process serves. It also lists the features of this
// build that its group's leader waits for every replica to have before using
// them (node.Features), the name of this replica's change feed, by
// which the leader sees a replica that lacks it, and whether its disk is full
// (disk_full), by which the leader sees a voter that cannot append.
func (h *handler) healthz(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	doc := map[string]any{"status": "ok", "features": node.Features()}
	if e := h.feedEpoch(); e != "" {
		doc["feed_epoch"] = e
	}
	if c, ok := h.svc.(committer); ok {
		doc["commit_index"] = c.CommitIndex()
	}
	if d, ok := h.svc.(diskChecker); ok {
		if err := d.DiskFull(); err != nil {
			doc["disk_full"] = true
			doc["disk"] = err.Error()
		}
	}
	writeJSON(w, http.StatusOK, doc)
	return nil
}

// committer is the part of the node that knows raft's commit index, which
// /healthz reports so that a follower starting up learns how far to catch up
// (node.Node.SetLeaderCommit).
type committer interface{ CommitIndex() uint64 }

// diskChecker is the part of the node that knows whether its disk is full.
type diskChecker interface{ DiskFull() error }

// readyz is 200 while the node can serve (a raft leader is known, the state
// file works) and 503 otherwise. Probes repeat, so the cause is not logged.
func (h *handler) readyz(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	if err := h.svc.Ready(); err != nil {
		p := toProblem(err, info(r).id)
		if p.Status != http.StatusServiceUnavailable {
			p = unavailable("the node is not ready", 5, err)
		}
		h.writeProblem(w, r, p)
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "centre": h.centre})
	return nil
}

func (h *handler) jsonSchema(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionRead, nil); err != nil {
		return err
	}
	c := r.PathValue("catalogue")
	if !slices.Contains(schema.Catalogues, c) {
		return newProblem(http.StatusNotFound, "not-found", "no catalogue "+clip(c)+"; known: supply, need, expert")
	}
	doc, err := schema.JSONSchema(c)
	if err != nil {
		return err
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/schema+json")
	hdr.Set("Cache-Control", "max-age=300")
	hdr.Set("Content-Length", strconv.Itoa(len(doc)))
	w.WriteHeader(http.StatusOK)
	w.Write(doc)
	return nil
}

func (h *handler) federationState(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionRead, nil); err != nil {
		return err
	}
	v, err := h.federation(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// jwk is one token key as published: the RFC 8037 OKP members, plus the centre
// that holds it and its validity window (nbf, and exp once retired) in seconds
// since the epoch, which JWK consumers that do not know them ignore.
type jwk struct {
	auth.JWK
	Centre    string `json:"centre"`
	NotBefore int64  `json:"nbf"`
	Expires   *int64 `json:"exp,omitempty"`
}

type jwksDoc struct {
	Keys []jwk `json:"keys"`
}

// jwks publishes every member's token keys: current, retired (they still check
// tokens issued while they were valid) and announced ahead of use. Keys of
// removed members, and keys revoked before a time after now (outright), are
// left out: no token under them is accepted now. A key revoked only before a
// past time is published with revoked_before, since nodes accept the tokens it
// signs after that time, and partners must too, but not the earlier ones.
func (h *handler) jwks(w http.ResponseWriter, r *http.Request) error {
	doc := jwksDoc{Keys: []jwk{}}
	if b := h.svc.Bundle(); b != nil {
		for _, m := range b.Members {
			if m.Removed != nil {
				continue
			}
			for _, k := range m.TokenKeys {
				key, ok := b.TokenJWK(k, h.now())
				if !ok {
					continue
				}
				out := jwk{JWK: key, Centre: m.ID, NotBefore: k.NotBefore.Unix()}
				if k.NotAfter != nil {
					exp := k.NotAfter.Unix()
					out.Expires = &exp
				}

				doc.Keys = append(doc.Keys, out)
			}
		}
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/json")
	writeJSON(w, http.StatusOK, doc)
	return nil
}
