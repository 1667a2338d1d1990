// Package schema owns the data model of liandong: the record envelope shared by the
// API and the sync log, the three catalogue bodies (supply, need, expert), their
// validation, the canonical JSON encoding used for hashing and signing, and the
// per-origin log entry.
//
// It imports nothing of ours, so every other package can depend on it.
package schema
