package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReliabilityDiskFull fills a single-replica centre's disk and gives the
// space back, without a restart. The full disk is the process's file size limit
// (RLIMIT_FSIZE, lowered on the running process with prlimit to the size its
// files have reached): past it, growing a file fails as on a full disk (EFBIG in
// place of ENOSPC), with no mount and no root. While full: writes answer 507
// application/problem+json, reads and /readyz go on, nothing acknowledged is
// lost. After the limit is lifted: writes succeed again within seconds, without a
// restart. At the end, after a clean stop: bbolt's check is clean on the state
// file and raft's log, and the log holds every version once.
func TestReliabilityDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real process")
	}
	// At the largest file's size, the state file cannot grow (ftruncate
	// fails); at a smaller file's size, writes past the limit fail too (pwrite
	// fails). Both run with raft's log in bbolt, whose files these sizes are
	// of (bbolt grows them in 16 MiB steps, so today both limits fall alike).
	// The file size limit applies to every file of the process at any offset,
	// inside preallocated space too, so with raft-wal (the third case)
	// whichever of the state file and the WAL writes past the limit first
	// fails: the contract is the same. Raft's log failing alone is
	// TestRaftLogDiskFull in node/ (failpoints build), and a WAL segment that
	// cannot be made, TestWALFullDisk and TestAFailedRotationIsReported.
	for _, tc := range []struct{ name, at, logStore string }{
		{"cannot-grow", "state.db", "bolt"}, {"write-fails", "raft/log.db", "bolt"}, {"wal", "state.db", "wal"},
	} {
		t.Run(tc.name, func(t *testing.T) { diskFull(t, tc.at, tc.logStore) })
	}
}

func diskFull(t *testing.T, limitAt, logStore string) {
	data := t.TempDir()
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	var env []string
	if logStore != "" {
		env = []string{"LIANDONG_RAFT_LOG_STORE=" + logStore}
	}
	p := startProcWith(t, binary, env, "serve", "--dev", "--data", data, "--http", fmt.Sprintf("127.0.0.1:%d", port), "--centre", "tianjin", "--log-level", "warn")
	waitReady(t, p, url, 60*time.Second)
	c, err := newClient(url, filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	acked := map[string]uint64{}
	put := func(id string) (int, []byte) {
		body := supplyBody(id)
		body["summary"] = strings.Repeat("面向京津冀企业转化的科技成果。", 60) // ~2.7 KB
		js, _ := json.Marshal(map[string]any{"catalogue": "supply", "visibility": "federation", "body": body})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, url+"/v1/records/"+id, bytes.NewReader(js))
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.http.Do(req)
		if err != nil {
			return 0, []byte(err.Error())
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode < 300 {
			var env envelope
			if err := json.Unmarshal(out, &env); err == nil {
				acked[id] = max(acked[id], env.Version)
			}
		} else if ct := resp.Header.Get("Content-Type"); resp.StatusCode == http.StatusInsufficientStorage && ct != "application/problem+json" {
			t.Fatalf("507 with Content-Type %q", ct)
		}
		return resp.StatusCode, out
	}
	for i := 0; i < 30; i++ {
		if code, out := put(fmt.Sprintf("tianjin:before-%d", i)); code != http.StatusOK && code != http.StatusCreated {
			t.Fatalf("write before the disk fills: %d %s", code, out)
		}
	}

	// The disk fills: no file of the process may grow past the largest now.
	var largest int64
	sizes := map[string]int64{}
	filepath.Walk(data, func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && strings.HasSuffix(path, ".db") {
			largest = max(largest, fi.Size())
			sizes[strings.TrimPrefix(path, data+"/")] = fi.Size()
		}
		return nil
	})
	t.Logf("file sizes: %v", sizes)
	limit := sizes[limitAt]
	if limitAt == "state.db" {
		limit = largest
	}
	pid := p.cmd.Process.Pid
	// Only the soft limit: raising it again needs no privilege.
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: uint64(limit), Max: unix.RLIM_INFINITY}, nil); err != nil {
		t.Skipf("cannot lower the file size limit of the process: %v", err)
	}
	t.Logf("file size limit of pid %d lowered to %d bytes", pid, limit)
	var full []byte
	n := 0
	deadline := time.Now().Add(90 * time.Second)
	for ; full == nil && time.Now().Before(deadline); n++ {
		code, out := put(fmt.Sprintf("tianjin:fill-%d", n))
		switch code {
		case http.StatusOK, http.StatusCreated, http.StatusServiceUnavailable:
		case http.StatusInsufficientStorage:
			full = out
		default:
			t.Fatalf("write %d while the disk fills: %d %s", n, code, out)
		}
	}
	if full == nil {
		t.Fatalf("no 507 after %d writes of about 3 KB", n)
	}
	var prob struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(full, &prob); err != nil || prob.Status != 507 || prob.Type != "urn:liandong:problem:insufficient-storage" || !strings.Contains(prob.Detail, "disk is full") {
		t.Fatalf("507 answer %s (%v)", full, err)
	}
	t.Logf("disk full after %d writes: %s", n, prob.Detail)
	for _, line := range strings.Split(p.output.String(), "\n") {
		if strings.Contains(line, "grow") || strings.Contains(line, "file too large") {
			t.Logf("node: %.300s", line)
		}
	}

	// While full: writes keep being refused, reads and readiness go on.
	for i := 0; i < 5; i++ {
		code, out := put(fmt.Sprintf("tianjin:while-full-%d", i))
		if code != http.StatusInsufficientStorage && code != http.StatusServiceUnavailable {
			t.Fatalf("write while full: %d %s", code, out)
		}
	}
	checkAcked(t, ctx, "while full", c, acked)
	var list struct {
		Items []envelope `json:"items"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/records?catalogue=supply&limit=100", nil, &list); err != nil || len(list.Items) == 0 {
		t.Fatalf("list while full: %v (%d items)", err, len(list.Items))
	}
	if resp, err := http.Get(url + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz while full: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Space returns; the node takes writes again by itself.
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}, nil); err != nil {
		t.Fatal(err)
	}
	recovered := time.Now()
	waitFor(t, 30*time.Second, func() bool {
		code, _ := put(fmt.Sprintf("tianjin:after-%d", time.Now().UnixNano()))
		return code == http.StatusOK || code == http.StatusCreated
	})
	t.Logf("writes accepted again %v after space returned", time.Since(recovered).Round(time.Millisecond))
	for i := 0; i < 30; i++ {
		if code, out := put(fmt.Sprintf("tianjin:after-%d", i)); code != http.StatusOK && code != http.StatusCreated {
			t.Fatalf("write after space returned: %d %s", code, out)
		}
	}
	checkAcked(t, ctx, "after space returned", c, acked)
	select {
	case <-p.done:
		t.Fatalf("the process died:\n%s", p.output)
	default:
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	relBoltCheck(t, filepath.Join(data, "state.db"))
	relRaftLogCheck(t, data)
	relCheckLogOnce(t, data, "tianjin")
}

// TestRemovalRefusedWhileAFollowerDiskIsFull: a follower whose disk is full
// (its file size limit, as in TestReliabilityDiskFull) still answers raft's
// heartbeats and its API, but its state file, and then raft's log, cannot grow.
// Removing the other follower would leave two voters of which one cannot
// append, and the group would commit nothing until space returned; the leader
// sees the full disk in the follower's /healthz and refuses (409
// membership-refused, naming it). Writes go on meanwhile; once space returns,
// the removal is allowed. node's TestWatchLogStore covers raft's log failing
// first.
func TestRemovalRefusedWhileAFollowerDiskIsFull(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	g := newCentreGroup(t, 3)
	ctx := context.Background()
	leader := g.leader(-1)
	full, other := (leader+1)%3, (leader+2)%3
	n := 0
	write := func() int {
		n++
		body := supplyBody(fmt.Sprintf("满盘测试 %d", n))
		body["summary"] = strings.Repeat("面向京津冀企业转化的科技成果。", 60) // ~2.7 KB
		code, _ := g.clients[leader].do(ctx, http.MethodPost, "/v1/records", map[string]any{
			"catalogue": "supply", "visibility": "federation", "body": body,
		}, nil)
		return code
	}
	for range 20 {
		if code := write(); code != http.StatusCreated {
			t.Fatalf("write before the disk fills: %d", code)
		}
	}
	health := func(i int) (full bool, disk string) {
		var h struct {
			DiskFull bool   `json:"disk_full"`
			Disk     string `json:"disk"`
		}
		if err := getJSON(ctx, g.urls[i]+"/healthz", &h); err != nil {
			t.Fatalf("healthz of %s: %v", g.ids[i], err)
		}
		return h.DiskFull, h.Disk
	}

	// The follower's files may not grow past the size its state file has
	// reached: whichever of its files writes past that first fails.
	fi, err := os.Stat(filepath.Join(g.cfgs[full].DataDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	pid := g.procs[full].cmd.Process.Pid
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: uint64(fi.Size()), Max: unix.RLIM_INFINITY}, nil); err != nil {
		t.Skipf("cannot lower the file size limit of the process: %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code := write(); code != http.StatusCreated {
			t.Fatalf("write while one follower's disk fills: %d", code)
		}
		if f, disk := health(full); f {
			t.Logf("%s reports a full disk (%s) after %d writes", g.ids[full], disk, n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reported a full disk in %d writes", g.ids[full], n)
		}
	}

	code, err := g.clients[leader].do(ctx, http.MethodDelete, "/v1/admin/replicas/"+g.ids[other], nil, nil)
	if code != http.StatusConflict || err == nil || !strings.Contains(err.Error(), g.ids[full]) || !strings.Contains(err.Error(), "reports its disk full") {
		t.Fatalf("removing %s while %s's disk is full: %d %v; want 409 naming %s's full disk", g.ids[other], g.ids[full], code, err, g.ids[full])
	}
	if code := write(); code != http.StatusCreated {
		t.Fatalf("write after the refused removal: %d", code)
	}

	// Space returns; the follower stores again at the next write it is sent.
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() bool {
		write()
		f, _ := health(full)
		return !f
	})
	if _, err := g.clients[leader].do(ctx, http.MethodDelete, "/v1/admin/replicas/"+g.ids[other], nil, nil); err != nil {
		t.Fatalf("removing %s once %s has space again: %v", g.ids[other], g.ids[full], err)
	}
	g.waitVoterIDs(20*time.Second, []string{g.ids[leader], g.ids[full]}, leader)
}
