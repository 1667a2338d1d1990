// Package bench is liandong's benchmark harness: load generators that talk to a
// node's HTTP API on loopback, the raw-disk baselines they are compared with, and
// the tables they print. cmd/liandong's `bench` subcommand runs it; every loop is
// bounded in time and count.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one scenario run.
type Result struct {
	Scenario string        `json:"scenario"`
	Clients  int           `json:"clients"`
	Ops      int           `json:"ops"`
	Errors   int           `json:"errors"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	PerSec   float64       `json:"per_sec"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
	Note     string        `json:"note,omitempty"`
	// HeapBytes is the Go heap after a collection, for the memory row.
	HeapBytes uint64 `json:"heap_bytes,omitempty"`
	// CPUPerOp is the CPU time this process used during the run, divided by
	// the operations done. With the node in the same process (bench write,
	// read) it is the node's cost of an operation plus the load generator's:
	// what a change to a CPU-bound path moves, where ops/s also moves with
	// whatever else keeps the cores busy.
	CPUPerOp time.Duration `json:"cpu_per_op_ns,omitempty"`
	// AllocsPerOp and BytesPerOp are the heap allocations this process made
	// during the run (runtime/metrics), divided by the operations done: like
	// CPUPerOp the node's and the load generator's together, but unmoved by
	// whatever else shares the cores.
	AllocsPerOp float64 `json:"allocs_per_op,omitempty"`
	BytesPerOp  float64 `json:"bytes_per_op,omitempty"`
}

// Row formats r as a table row; the CPU per operation, when measured, leads the note.
func (r Result) Row() string {
	note := r.Note
	if r.CPUPerOp > 0 {
		lead := round(r.CPUPerOp) + " CPU/op"
		if r.AllocsPerOp > 0 {
			lead += fmt.Sprintf(", %.0f allocs/op, %.1f KB/op", r.AllocsPerOp, r.BytesPerOp/1024)
		}
		note = strings.TrimSuffix(lead+"; "+note, "; ")
	}
	return fmt.Sprintf("%-22s %7d %9d %7d %11.0f %10s %10s %10s  %s", r.Scenario, r.Clients, r.Ops, r.Errors, r.PerSec,
		round(r.P50), round(r.P99), round(r.Max), note)
}

// Header is the table header matching Row.
const Header = "scenario               clients       ops  errors       ops/s        p50        p99        max"

func round(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// loadGrace is how long past its deadline Load lets the operations under way
// finish.
const loadGrace = 2 * time.Second

// Load runs op from clients goroutines for d (and at most maxOps operations in all)
// and summarises the latencies.
//
// An op under way at the deadline is let finish and counted, rather than
// cancelled: a cancelled write left the node under test logging a 503 for
// each client, and applying writes the next measurement then paid for. One
// still running loadGrace after the deadline is cancelled and not counted,
// so a stuck request cannot stretch the run (and shrink its rate) by the
// client's whole timeout.
func Load(ctx context.Context, scenario string, clients int, d time.Duration, maxOps int, op func(ctx context.Context, client, i int) error) Result {
	deadline := time.Now().Add(d)
	ctx, cancel := context.WithDeadline(ctx, deadline.Add(loadGrace))
	defer cancel()
	var (
		mu     sync.Mutex
		lat    []time.Duration
		errs   atomic.Int64
		issued atomic.Int64
		wg     sync.WaitGroup
	)
	start, cpuStart, allocStart := time.Now(), processCPU(), heapAllocs()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1024)
			for i := 0; ctx.Err() == nil && time.Now().Before(deadline); i++ {
				if issued.Add(1) > int64(maxOps) {
					break
				}
				t0 := time.Now()
				err := op(ctx, c, i)
				if ctx.Err() != nil {
					break // the run was stopped: neither success nor failure
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed, cpu, allocs := time.Since(start), processCPU()-cpuStart, heapAllocs()
	r := Summarise(scenario, clients, lat, int(errs.Load()), elapsed)
	if r.Ops > 0 && cpuStart > 0 {
		r.CPUPerOp = cpu / time.Duration(r.Ops)
	}
	if r.Ops > 0 {
		r.AllocsPerOp = float64(allocs[0]-allocStart[0]) / float64(r.Ops)
		r.BytesPerOp = float64(allocs[1]-allocStart[1]) / float64(r.Ops)
	}
	return r
}

// heapAllocs returns the objects and bytes this process has allocated on
// the heap since it started (cumulative, so a collection does not reset
// them); reading them does not stop the world as runtime.ReadMemStats does.
func heapAllocs() [2]uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	var out [2]uint64
	for i := range s {
		if s[i].Value.Kind() == metrics.KindUint64 {
			out[i] = s[i].Value.Uint64()
		}
	}
	return out
}

// Summarise builds a Result from latencies.
func Summarise(scenario string, clients int, lat []time.Duration, errs int, elapsed time.Duration) Result {
	slices.Sort(lat)
	r := Result{Scenario: scenario, Clients: clients, Ops: len(lat), Errors: errs, Elapsed: elapsed}
	if elapsed > 0 {
		r.PerSec = float64(len(lat)) / elapsed.Seconds()
	}
	if len(lat) > 0 {
		r.P50 = lat[len(lat)*50/100]
		r.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
		r.Max = lat[len(lat)-1]
	}
	return r
}

// API is a minimal client of a node's HTTP API for load generation.
type API struct {
	Base, Token string
	HTTP        *http.Client
}

// NewAPI returns a client with a connection pool sized for clients.
func NewAPI(base, token string, clients int) *API {
	tr := &http.Transport{MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2, IdleConnTimeout: time.Minute}
	return &API{Base: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// Do sends one request and decodes a 2xx JSON answer into out (when not nil);
// a *[]byte out gets the answer as it came.
func (a *API) Do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.Base+path, rd)
	if err != nil {
		return err
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %.200s", method, path, resp.Status, data)
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = data
		return nil
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// RecordJSON returns a create request of about size bytes: a supply item whose
// summary pads it out.
func RecordJSON(i, size int) []byte {
	return paddedRecord(size, map[string]any{
		"title": fmt.Sprintf("高镍三元正极材料连续化制备技术 %d", i), "industry": "new-materials",
		"keywords": []string{"正极材料", "锂电池"}, "trl": 6, "owner_org": "天津大学",
		"transfer_modes": []string{"license"},
	})
}

// CreateRequests makes RecordJSON's requests from a template for each count
// of digits in i (the summary's padding depends on it), without
// encoding/json: marshalling a map for every request was a twentieth of a
// write benchmark's CPU, taken from the node on the same cores.
type CreateRequests struct {
	// byDigits[d] is RecordJSON's request for a number of d digits, split
	// around the number.
	byDigits [20][2][]byte
}

// NewCreateRequests prepares the requests of size bytes.
func NewCreateRequests(size int) *CreateRequests {
	c := &CreateRequests{}
	for d := 1; d < len(c.byDigits); d++ {
		n := 1
		for range d - 1 {
			n *= 10
		}
		js := RecordJSON(n, size)
		mark := []byte(fmt.Sprintf(" %d\"", n))
		at := bytes.Index(js, mark)
		c.byDigits[d] = [2][]byte{js[:at+1], js[at+len(mark)-1:]}
	}
	return c
}

// JSON returns RecordJSON(i, size) for i ≥ 0.
func (c *CreateRequests) JSON(i int) []byte {
	num := strconv.Itoa(i)
	t := c.byDigits[len(num)]
	out := make([]byte, 0, len(t[0])+len(num)+len(t[1]))
	return append(append(append(out, t[0]...), num...), t[1]...)
}

// paddedRecord is the create request of a supply item with body, its summary
// padded so the request is about size bytes.
func paddedRecord(size int, body map[string]any) []byte {
	base, _ := json.Marshal(map[string]any{"catalogue": "supply", "visibility": "federation", "body": body})
	pad := size - len(base) - len(`,"summary":""`)
	// Each of these characters is 3 bytes of UTF-8.
	body["summary"] = strings.Repeat("成果转化", max(1, pad/12))
	out, _ := json.Marshal(map[string]any{"catalogue": "supply", "visibility": "federation", "body": body})
	return out
}

// Topics are the titles VariedRecordJSON (and the search index's own
// benchmarks) draw from: technologies of the centres' catalogues, so a
// search term matches a share of the records, not all.
var Topics = []string{
	"高镍三元正极材料连续化制备技术", "风电齿轮箱轴承寿命预测", "工业机器人高精度减速器", "细胞治疗药物冻存工艺",
	"氢燃料电池双极板涂层", "航空发动机叶片增材修复", "信创数据库迁移工具", "钙钛矿叠层太阳能电池",
	"液流电池长时储能系统", "城市数字孪生平台", "智能网联汽车测试场", "生物可降解医用高分子",
	"碳化硅功率器件封装", "工业互联网标识解析", "盾构机主轴承国产化", "海水淡化反渗透膜",
	"固态锂电池电解质", "农业无人机精准施药", "氢能重卡加注站", "高速列车轮对检测",
	"中药材溯源区块链", "大气污染源解析", "光刻胶单体合成", "复合材料无损检测",
}

// variedIndustries are VariedRecordJSON's industries.
var variedIndustries = []string{"new-materials", "high-end-equipment", "intelligent-tech", "biomedicine", "new-energy", "aerospace"}

// VariedRecordJSON is RecordJSON with a title, keywords and industry drawn from
// a vocabulary of 24 topics by i: a topic's words match about 1/24 of the
// records, the padding of the summary (成果转化) all of them.
func VariedRecordJSON(i, size int) []byte {
	title := Topics[i%len(Topics)]
	other := Topics[(i/len(Topics)+i)%len(Topics)]
	return paddedRecord(size, map[string]any{
		"title": fmt.Sprintf("%s %d", title, i), "industry": variedIndustries[i%len(variedIndustries)],
		"keywords": []string{title, other}, "trl": 1 + i%9, "owner_org": "天津大学",
		"transfer_modes": []string{"license"},
	})
}

// ProcessCPU returns the CPU time (user and system) this process has used so
// far, all threads together, or 0 where the system will not say: for
// scenarios that time themselves rather than through Load (catchup).
func ProcessCPU() time.Duration { return processCPU() }
