package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"liandong/node/search"
	"liandong/schema"
)

// searchState is the node's full-text index (node/search) and the goroutine
// that keeps it up to date, owned by the node from Open to Close.
type searchState struct {
	idx    *search.Index
	cancel context.CancelFunc
	done   chan struct{}
}

// searchFile is the index's file in the data directory, beside state.db. It is
// derived data: deleting it makes the node rebuild it from the state file.
const searchFile = "search.db"

func (n *Node) openSearch() error {
	idx, err := search.Open(filepath.Join(n.cfg.DataDir, searchFile), n.st, search.Options{Logger: n.log.With("component", "search")})
	if err != nil {
		return fmt.Errorf("open search index: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.search = searchState{idx: idx, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(n.search.done)
		idx.Run(ctx)
	}()
	return nil
}

func (n *Node) closeSearch() error {
	if n.search.idx == nil {
		return nil
	}
	n.search.cancel()
	<-n.search.done
	return n.search.idx.Close()
}

// SearchPosition is the change-feed position the search index has taken in
// (0 without an index): it trails the store's while the index takes in a
// burst of changes (a catch-up's backlog).
func (n *Node) SearchPosition() uint64 {
	if n.search.idx == nil {
		return 0
	}
	return n.search.idx.Position()
}

// Search answers a full-text query over this node's records (its own and those
// replicated from other centres). The index catches up with the state file
// first, so anything written before the call is found.
func (n *Node) Search(_ context.Context, q search.Query) (*search.Page, error) {
	if n.closed.Load() {
		return nil, ErrShutdown
	}
	page, err := n.search.idx.Search(q)
	if errors.Is(err, search.ErrClosed) {
		return nil, ErrShutdown
	}
	return page, err
}

// Match ranks the records that could answer src (a need or a supply item) from
// every centre's catalogues; see search.Index.Match.
func (n *Node) Match(_ context.Context, src *schema.Record, opts search.MatchOptions) (*search.MatchResult, error) {
	if n.closed.Load() {
		return nil, ErrShutdown
	}
	res, err := n.search.idx.Match(src, opts)
	if errors.Is(err, search.ErrClosed) {
		return nil, ErrShutdown
	}
	return res, err
}
