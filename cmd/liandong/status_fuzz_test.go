package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"

	"liandong/schema"
)

// FuzzStatusDocument: whatever a node answers to GET /v1/federation (the
// status and readiness document `liandong status` reads), the command
// refuses it with an error or reports on it, never panics; the table it
// prints for a terminal holds no control character but its line ends (a
// node's, or a peer's, text could otherwise move the cursor, clear the
// screen or forge a line), so it lists exactly the problems and notes the
// report has; and --json prints a report that reads back.
func FuzzStatusDocument(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzStatusDocument.
	now := time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		doc, err := parseFederation("http://127.0.0.1:1", status, http.StatusText(status), body)
		if err != nil {
			if doc != nil {
				t.Fatal("a document with the error")
			}
			return
		}
		if status != http.StatusOK || doc.Centre == "" {
			t.Fatalf("answer of %d (centre %q) taken", status, doc.Centre)
		}
		rep := buildStatusReport(doc, "http://127.0.0.1:1", now, statusLimits{maxLag: 2 * time.Minute, bundleWarn: 7 * 24 * time.Hour})
		if rep.OK != (len(rep.Problems) == 0) {
			t.Fatalf("OK %v with %d problems", rep.OK, len(rep.Problems))
		}
		var out bytes.Buffer
		if err := printStatus(&out, rep); err != nil {
			t.Fatal(err)
		}
		listed := 0
		for _, line := range strings.Split(out.String(), "\n") {
			for _, r := range line {
				if unicode.IsControl(r) {
					t.Fatalf("control character %U printed in %q", r, line)
				}
			}
			if strings.HasPrefix(line, "  - [") {
				listed++
			}
		}
		if want := len(rep.Problems) + len(rep.Notes); listed != want {
			t.Fatalf("%d problems and notes printed, report has %d:\n%s", listed, want, out.String())
		}
		js, err := json.Marshal(rep)
		if err != nil {
			t.Fatalf("--json: %v", err)
		}
		var back statusReport
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatalf("--json output does not read back: %v", err)
		}
	})
}

// FuzzNodeCentre: whatever a node answers to GET /readyz, `liandong import`
// takes from it a well-formed centre id, which it writes into every record
// id, or an error; never a panic, never another string.
func FuzzNodeCentre(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzNodeCentre.
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		c, err := readyzCentre(status, bytes.NewReader(body))
		if err != nil {
			if c != "" {
				t.Fatalf("centre %q with the error %v", c, err)
			}
			return
		}
		if status != http.StatusOK || !schema.ValidCentreID(c) {
			t.Fatalf("centre %q taken from an answer of %d", c, status)
		}
	})
}
