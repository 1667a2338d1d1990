package bench

import (
	"bytes"
	"testing"
)

// TestCreateRequestsAreRecordJSONs holds the templates to the requests they
// stand for, across the digit counts where the padding changes.
func TestCreateRequestsAreRecordJSONs(t *testing.T) {
	for _, size := range []int{64, 256, 1024, 4096} {
		c := NewCreateRequests(size)
		for _, i := range []int{0, 1, 9, 10, 99, 100, 12345, 999999, 1000000, 1 << 40, 1<<63 - 1} {
			if got, want := c.JSON(i), RecordJSON(i, size); !bytes.Equal(got, want) {
				t.Fatalf("size %d, record %d:\n got %s\nwant %s", size, i, got, want)
			}
		}
	}
}
