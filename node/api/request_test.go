package api

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReadAll checks readAll against io.ReadAll whatever the declared length
// says: exact, unknown, too short or too long, and through readers that
// return a byte at a time or fail midway.
func TestReadAll(t *testing.T) {
	body := strings.Repeat("成果转化", 100)
	failure := errors.New("connection reset")
	for _, tc := range []struct {
		name          string
		r             func() io.Reader
		contentLength int64
		want          string
		wantErr       error
	}{
		{"exact", func() io.Reader { return strings.NewReader(body) }, int64(len(body)), body, nil},
		{"unknown", func() io.Reader { return strings.NewReader(body) }, -1, body, nil},
		{"declared longer", func() io.Reader { return strings.NewReader(body) }, int64(len(body)) + 100, body, nil},
		{"declared shorter", func() io.Reader { return strings.NewReader(body) }, 10, body, nil},
		{"one byte at a time", func() io.Reader { return iotest.OneByteReader(strings.NewReader(body)) }, int64(len(body)), body, nil},
		{"empty", func() io.Reader { return strings.NewReader("") }, 0, "", nil},
		{"over the first 64 KB", func() io.Reader { return strings.NewReader(strings.Repeat(body, 100)) }, int64(100 * len(body)), strings.Repeat(body, 100), nil},
		{"fails midway", func() io.Reader {
			return io.MultiReader(strings.NewReader(body[:100]), iotest.ErrReader(failure))
		}, int64(len(body)), body[:100], failure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(tc.r(), tc.contentLength)
			if !errors.Is(err, tc.wantErr) || string(got) != tc.want {
				t.Fatalf("readAll = %d bytes, %v; want %d bytes, %v", len(got), err, len(tc.want), tc.wantErr)
			}
		})
	}
	t.Run("one allocation for a body of the length it said", func(t *testing.T) {
		r, b := bytes.NewReader(nil), []byte(body)
		allocs := testing.AllocsPerRun(20, func() {
			r.Reset(b)
			if got, err := readAll(r, int64(len(body))); err != nil || len(got) != len(body) {
				t.Fatalf("readAll = %d bytes, %v", len(got), err)
			}
		})
		if allocs > 1 {
			t.Fatalf("readAll of a %d-byte body: %.0f allocations, want 1", len(body), allocs)
		}
	})
	t.Run("over the limit", func(t *testing.T) {
		r := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(body)), 100)
		_, err := readAll(r, int64(len(body)))
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) {
			t.Fatalf("readAll past the limit: %v, want a MaxBytesError", err)
		}
	})
}

// TestBodyWithByteOrderMarkNamed: a partner's JSON with a UTF-8 byte order
// mark (as some Windows tools write it) is refused with a detail that says so,
// not "unexpected character 'ï'".
func TestBodyWithByteOrderMarkNamed(t *testing.T) {
	e := newEnv(t, false)
	body := append([]byte("\uFEFF"), mustJSON(envelope("need", "federation", needBody("轴承寿命预测")))...)
	for _, rq := range []req{
		{method: "POST", path: "/v1/records", body: body},
		{method: "PUT", path: "/v1/records/tianjin:bom", body: body},
		{method: "POST", path: "/v1/batch", body: append([]byte("\uFEFF"), `{"items":[]}`...)},
	} {
		rq.token = e.writer(t)
		r := e.do(t, rq)
		wantStatus(t, r, http.StatusBadRequest)
		if p := r.problem(t); !strings.Contains(p.Detail, "byte order mark (U+FEFF)") {
			t.Errorf("%s %s: detail %q", rq.method, rq.path, p.Detail)
		}
	}
}
