package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"liandong/schema"
)

// TestWriteBodyRecordBytes: a record answer is the bytes encoding/json's
// encoder writes, whether the fast writer takes the record (a canonical body,
// plain strings) or leaves it to encoding/json (a body with '<', an id with a
// quote), with its Content-Length.
func TestWriteBodyRecordBytes(t *testing.T) {
	at := time.Date(2026, 11, 27, 9, 30, 0, 123, time.FixedZone("CST", 8*3600))
	for name, rec := range map[string]*schema.Record{
		"fast":        {ID: "tianjin:01J", Catalogue: "supply", Origin: "tianjin", Version: 2, Visibility: "federation", Schema: 1, CreatedAt: at, UpdatedAt: at, Body: json.RawMessage(`{"summary":"镍氢电池","trl":6}`)},
		"html body":   {ID: "tianjin:01J", Catalogue: "supply", Origin: "tianjin", Version: 2, Visibility: "federation", Schema: 1, CreatedAt: at, UpdatedAt: at, Body: json.RawMessage(`{"summary":"<b>"}`)},
		"quoted id":   {ID: `tianjin:"x"`, Catalogue: "supply", Origin: "tianjin", Version: 1, CreatedAt: at, UpdatedAt: at, Broker: "hq", Deleted: true, ExpiresAt: &at, Body: json.RawMessage(`{}`)},
		"spaced body": {ID: "tianjin:01J", Body: json.RawMessage(`{ "a": 1 }`)},
	} {
		rr := httptest.NewRecorder()
		writeBody(rr, http.StatusOK, rec)
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rec); err != nil {
			t.Fatal(err)
		}
		if got := rr.Body.String(); got != want.String() {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want.String())
		}
		if cl := rr.Header().Get("Content-Length"); cl != strconv.Itoa(want.Len()) {
			t.Errorf("%s: Content-Length %s, body %d bytes", name, cl, want.Len())
		}
	}
	if _, ok := schema.AppendRecordJSON(nil, &schema.Record{ID: "a", Body: json.RawMessage(`{"a":1}`)}); !ok {
		t.Fatal("the fast writer refused a plain record: the cases above test only encoding/json")
	}
}

// TestWriteBodyNilRecord: a nil record is answered as encoding/json answers it.
func TestWriteBodyNilRecord(t *testing.T) {
	rr := httptest.NewRecorder()
	writeBody(rr, http.StatusOK, (*schema.Record)(nil))
	if got := rr.Body.String(); got != "null\n" {
		t.Fatalf("nil record written as %q", got)
	}
}
