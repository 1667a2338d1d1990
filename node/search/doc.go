// Package search is a node's full-text index and matchmaking (供需对接): search
// over the titles, summaries, descriptions, keywords, organisations, expert names
// and fields, industries and challenge targets of every record the node holds,
// its own and those replicated from other centres, in Chinese and English,
// without an external service.
//
// # Text
//
// Analyze turns text into terms: NFKC-normalised and lower-cased; runs of CJK
// characters become overlapping bigrams (锂电池 → 锂电, 电池), a lone character
// stays itself, and in a document the last character of a run is a term of its
// own too (池), so that a query of that one character finds it; other letters and digits form words (mRNA → mrna). A query is
// split on spaces into words; a document matches when it matches every word,
// and it matches a word when it holds all of the word's terms if there are one
// or two, else 60% of them (rounded up), so 风电齿轮箱轴承寿命预测 typed as one
// word still finds a record about 风电轴承的寿命预测. A query word of one CJK
// character matches every term that starts with it. Hits are ranked by BM25F:
// fields weigh title 3, keywords 2.5, expert name 2, organisation 1.5, text 1,
// industry and other metadata 0.5, with per-field length normalisation and
// k1 = 1.2; document frequencies count every record, whatever the caller may
// see, so a record's score does not depend on who asks.
//
// # Storage
//
// The index is its own bbolt file beside the state file (search.db), not part
// of raft's state: writes are not slowed by indexing, snapshots stay small, and
// the file can be deleted at any time. It follows the store's change feed in
// batches (Run), recording the feed position it reached and a fingerprint of
// the change there; Open rebuilds it when the file is missing, unreadable, of
// another layout, or not from the state file's history (a position past the
// feed's end or holding another change, as after the state file was restored
// or rebuilt). The file is not fsynced, so a power cut can tear it: a
// postings block that does not decode is skipped by the query or write that
// meets it, and the index is rebuilt (by Run at once, even with no writes).
// Every search first catches up with the feed, so a record written before
// the query is found, unless the backlog is beyond QueryCatchUp or the index
// was just emptied for a rebuild (then Run rebuilds it, and the answer's
// Behind counts what it lacks).
//
// Each indexed record has an ordinal, the next one when it is indexed: an
// update indexes the record anew under a new ordinal and removes the old
// one's postings, so ordinals only grow and an ordinal never names another
// document (docs.go). A term's postings are blocks of up to 128 postings
// (2 KB), keyed by the term and the first ordinal of their range, holding
// the ordinals as distances and the term's frequency in each field
// (postings.go): an index transaction groups its batch's postings by term
// and appends them to each term's last block, in key order, so it rewrites
// a term's blocks once per batch instead of adding a key per posting. A
// query reads each of its terms' blocks in order into per-query candidates
// kept by ordinal (collect.go); when a query's word is rare it draws the
// candidates from that word's rarest terms alone (a document holding k of a
// word's n terms holds one of its n-k+1 rarest) and reads the other terms'
// blocks only where candidates are. The doc table, every record's Doc by
// ordinal, is in memory.
//
// # Paging
//
// Relevance pages are keyset-paged on the (score, id) of the last hit, ties in
// id order. Scores depend on the whole corpus, so a write between two pages can
// move a record across the cursor — seen twice or missed; pages read without a
// write in between are exact. Id order (ByID) pages like the plain list and is
// stable under writes.
//
// Matchmaking is in match.go; its scoring is documented there.
package search
