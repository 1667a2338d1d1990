package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"liandong/client"
	"liandong/schema"
	"liandong/transfer"
)

const importUsage = `Usage: liandong import --node URL --token FILE [--catalogue supply|need|expert] [--format csv|xlsx|jsonl] [--sheet NAME] [--dry-run] FILE

Reads a CSV (UTF-8 with or without BOM, or GB18030), an Excel workbook (.xlsx:
the first sheet, or --sheet NAME) — both with Chinese or English headers:
编号, 标题, 摘要, 所属领域, 关键词, 技术成熟度, 所属单位, 转化方式 … — or a JSON
Lines file of record envelopes (the format follows the file name: .xlsx,
.jsonl/.ndjson, else CSV), checks every row, and writes the rows to the node as
<centre>:<编号>, so importing the same file again updates instead of
duplicating (rows that did not change are left alone). Over a stored record,
what the file cannot say is kept: the columns it lacks, a patent's status and
IP rights other than patents (专利号 lists patent numbers only), and the
visibility where a row gives none; so an export imports back unchanged.
An expiry (有效期至) given as a date is the end of that day in China (UTC+8),
as the web console reads it; a time with an offset is taken as given.
--dry-run lists every row's errors with row and column and writes nothing.`

const exportUsage = `Usage: liandong export --node URL [--token FILE] --catalogue supply|need|expert [--format csv|xlsx|jsonl] [--encoding utf-8|gb18030] [--out FILE]

Writes every record of a catalogue the token may read as CSV (Chinese headers,
UTF-8 with a BOM for Excel unless --no-bom, or GB18030), as an Excel workbook
(.xlsx: one sheet, Chinese headers) or as JSON Lines. Without --format the
format follows the --out file name (.xlsx, .jsonl), else CSV.`

func readTokenFile(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token: %w (give --token FILE with a token from `liandong token issue`)", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// nodeCentre asks a node which centre it serves (GET /readyz).
func nodeCentre(ctx context.Context, base string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/readyz", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("ask %s which centre it serves: %w (is the node running? or give --centre)", base, err)
	}
	defer resp.Body.Close()
	c, err := readyzCentre(resp.StatusCode, io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return "", fmt.Errorf("ask %s which centre it serves: %s: %w (give --centre)", base, resp.Status, err)
	}
	return c, nil
}

// readyzCentre reads the centre from a /readyz answer of status. It is
// written into every record id of an import, so it must be a centre id:
// anything else (a proxy's page, a node that is not liandong's) is refused
// rather than imported under.
func readyzCentre(status int, body io.Reader) (string, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return "", fmt.Errorf("read the answer: %w", err)
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("not ready: %s", problemDetail(data))
	}
	var v struct {
		Centre string `json:"centre"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return "", fmt.Errorf("not a liandong readiness document: %w", err)
	}
	if !schema.ValidCentreID(v.Centre) {
		return "", fmt.Errorf("the answer names centre %q, which is no centre id", v.Centre)
	}
	return v.Centre, nil
}

type errRowsRefused struct{ n int }

func (e errRowsRefused) Error() string {
	return fmt.Sprintf("%d rows have errors; fix them and run again (--skip-errors imports the others)", e.n)
}

func cmdImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, importUsage); fs.PrintDefaults() }
	nodeURL := fs.String("node", envOr("LIANDONG_NODE", "http://127.0.0.1:8700"), "API URL of this centre's node")
	tokenFile := fs.String("token", os.Getenv("LIANDONG_TOKEN_FILE"), "file holding a token with the write scope")
	catalogue := fs.String("catalogue", "", "catalogue of every row, unless the file has a 清单 (catalogue) column")
	format := fs.String("format", "", "csv, xlsx or jsonl (default: from the file name)")
	sheet := fs.String("sheet", "", "XLSX: the sheet to read (default: the first)")
	encoding := fs.String("encoding", transfer.EncodingAuto, "CSV encoding: auto, utf-8 or gb18030")
	visibility := fs.String("visibility", schema.VisibilityFederation, "visibility of rows that do not say: private, federation or public (unset: federation for new records, a stored record keeps its own)")
	centre := fs.String("centre", "", "the importing centre (default: asked of the node)")
	dryRun := fs.Bool("dry-run", false, "check every row and list the errors; write nothing")
	skipErrors := fs.Bool("skip-errors", false, "import the good rows even when others have errors")
	// Package flag stops at the first non-flag; flags after FILE
	// (import data.csv --skip-errors) are taken too, but not after "--",
	// which ends the flags (import -- -odd-name.csv).
	var rest []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, rest = args[:i], args[i+1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	var files []string
	for fs.NArg() > 0 {
		files = append(files, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	files = append(files, rest...)
	if len(files) != 1 {
		return usagef("want one FILE to import, got %d\n%s", len(files), importUsage)
	}
	if err := checkNodeURL(*nodeURL); err != nil {
		return err
	}
	path := files[0]
	if *format == "" {
		*format = transfer.FormatOf(path)
	}
	switch *format = strings.ToLower(*format); *format {
	case transfer.FormatCSV, transfer.FormatXLSX, transfer.FormatJSONL:
	default:
		return usagef("--format %q: want csv, xlsx or jsonl", *format)
	}
	if *sheet != "" && *format != transfer.FormatXLSX {
		return usagef("--sheet applies to .xlsx files only (this is read as %s)", *format)
	}
	if *catalogue != "" && !schema.KnownCatalogue(*catalogue) {
		return usagef("--catalogue %q: want supply, need or expert", *catalogue)
	}
	if *centre == "" {
		c, err := nodeCentre(ctx, *nodeURL)
		if err != nil {
			return err
		}
		*centre = c
	}
	f, err := os.Open(path)
	if err != nil {
		return err // an *os.PathError: it names the file
	}
	defer f.Close()
	visibilityGiven := false
	fs.Visit(func(f *flag.Flag) { visibilityGiven = visibilityGiven || f.Name == "visibility" })
	rows, err := transfer.Read(f, transfer.Options{Format: *format, Encoding: *encoding, Sheet: *sheet, Catalogue: *catalogue, Centre: *centre,
		Visibility: *visibility, VisibilityGiven: visibilityGiven})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	bad := 0
	for _, r := range rows {
		for _, e := range r.Errors {
			fmt.Fprintf(stdout, "%s: %s\n", path, e)
		}
		if len(r.Errors) > 0 {
			bad++
		}
	}
	fmt.Fprintf(stdout, "%s: %d rows, %d ready, %d with errors\n", path, len(rows), len(rows)-bad, bad)
	if *dryRun {
		if bad > 0 {
			return errRowsRefused{bad}
		}
		return nil
	}
	if bad > 0 && !*skipErrors {
		return errRowsRefused{bad}
	}
	token, err := readTokenFile(*tokenFile)
	if err != nil {
		return err
	}
	c := client.New(*nodeURL, token)
	// Read through the leader: a replica that lags would take a row for
	// absent (and write it with no precondition, over the leader's newer
	// version) or unchanged.
	c.Consistent = true
	// Keep a connection for each reader: http.DefaultTransport keeps two a
	// host, and the others would be opened and closed for every read.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = importReaders + 2
	c.HTTP = &http.Client{Transport: tr}
	im := importer{c: c, path: path, stdout: stdout}
	prog := newProgress(stderr, "import")
	defer func() { prog.done(len(rows)) }()
	done := 0
	var stop error
	for _, chunk := range importChunks(rows) {
		prog.update(done)
		if stop = im.rows(ctx, chunk); stop != nil {
			break
		}
		done += len(chunk)
	}
	// Also when the import stops early: what was written is said.
	fmt.Fprintf(stdout, "%s: %d created, %d updated, %d unchanged, %d failed\n", path, im.created, im.updated, im.unchanged, im.failed)
	if stop != nil {
		return stop
	}
	if im.failed > 0 {
		return fmt.Errorf("%d rows were refused by the node", im.failed)
	}
	return nil
}

// Bounds of the rows import writes in one request: under the node's
// MaxBatch, and half its default 1 MiB body limit (a body's text can grow
// on the way: encoding/json writes <, > and & as six bytes each). A row is
// counted by rowBytes. A node that still finds a batch too large (413) gets
// its rows one by one.
const (
	importBatch      = 200
	importBatchBytes = 512 << 10
)

// importChunks splits rows into the batches import sends. A file may carry a
// key twice: a later row then updates what an earlier one wrote, as when rows
// went one by one. A batch names each id once, so a repeated key starts the
// next batch, as does a row that would take the batch past importBatch rows
// or importBatchBytes.
func importChunks(rows []transfer.Row) [][]transfer.Row {
	var out [][]transfer.Row
	from, size, keys := 0, 0, map[string]bool{}
	for i, r := range rows {
		var id string
		n := 0
		if r.Record != nil {
			id, n = r.Record.ID, rowBytes(r.Record)
		}
		if i > from && (i-from >= importBatch || keys[id] || size+n > importBatchBytes) {
			out = append(out, rows[from:i])
			from, size, keys = i, 0, map[string]bool{}
		}
		if id != "" {
			keys[id] = true
		}
		size += n
	}
	if from < len(rows) {
		out = append(out, rows[from:])
	}
	return out
}

// rowBytes is about what rec takes in a batch: its body and an envelope.
func rowBytes(rec *schema.Record) int { return len(rec.Body) + 256 }

// importer writes the rows of one file and counts what became of them.
type importer struct {
	c      *client.Client
	path   string
	stdout io.Writer
	// oneByOne: the node answered 404 or 405 to a batch (a build from before
	// POST /v1/batch), so rows go one request each, as they used to.
	oneByOne bool
	// noReadMany: the node refused GET /v1/records?ids= (a build from
	// before it), so rows are read one request each.
	noReadMany bool
	// noIfAbsent: the node refused If-None-Match (a build from before it),
	// so rows read as absent are written with no precondition, as they
	// used to: a record created between the read and the write is replaced.
	noIfAbsent bool
	// retriesSpent: a row was still answered 503 after importAttempts, and
	// no write has gone through since, so rows answered 503 are not tried
	// again (rowsAttempt).
	retriesSpent                        bool
	created, updated, unchanged, failed int
}

// rows imports a slice of rows: each is read first, so that an unchanged row
// is not written again, a changed one is written over the version read, and
// an absent one is created only if it is still absent (If-None-Match).
// A row whose read or write fails, alone or with its batch, is counted
// failed and reported, and the import goes on; the token's refusal, or an
// error that is no answer of the node's, stops it: at once while reading,
// and once every row written is accounted for while writing. Rows answered
// 503 (an election, a write not committed in time) or 429 (a node at its
// max_writes) are imported again, read
// and all, after the node's Retry-After, up to importAttempts times in all;
// not when the node asks for a wait beyond importRetryWait (an operator must
// act), nor after rows were still refused so after every attempt, until a
// write goes through again.
func (im *importer) rows(ctx context.Context, rows []transfer.Row) error {
	return im.rowsAttempt(ctx, rows, 1)
}

// Bounds of import's retries of rows answered 503: attempts in all, and
// the longest wait between two (a node's Retry-After above it is cut).
const (
	importAttempts  = 4
	importRetryWait = 10 * time.Second
)

func (im *importer) rowsAttempt(ctx context.Context, rows []transfer.Row, attempt int) (result error) {
	type pending struct {
		row     transfer.Row
		rec     *schema.Record // what the row writes over the version read
		ifMatch uint64
	}
	var todo []pending
	var stop error
	var again []transfer.Row
	var wait time.Duration
	fail := func(r transfer.Row, err error) {
		var pr *client.Problem
		// 429: the node serves its max_writes already and did nothing of
		// these; read again and written as a 503's rows are, which costs a
		// read and is right for both.
		unavailable := errors.As(err, &pr) && (pr.Status == http.StatusServiceUnavailable || pr.Status == http.StatusTooManyRequests)
		if unavailable && attempt < importAttempts && !im.retriesSpent && pr.RetryAfter <= importRetryWait {
			// Whether a write answered so was applied is unknown: the row is
			// read again, and written only if that read says so.
			again = append(again, r)
			wait = max(wait, pr.RetryAfter)
			return
		}
		if unavailable && attempt >= importAttempts {
			// A node still unavailable after every attempt is likely to be
			// for the next rows too: they fail at once, not after waits of
			// their own, which a long file would add up to hours, until a
			// write goes through again.
			im.retriesSpent = true
		}
		im.failed++
		fmt.Fprintf(im.stdout, "%s: row %d: %s: %v\n", im.path, r.Row, r.Record.ID, err)
		if errors.As(err, &pr) {
			for _, fe := range pr.Errors {
				fmt.Fprintf(im.stdout, "  %s: %s\n", fe.Path, fe.Message)
			}
		}
		switch {
		case stop != nil || !stopsImport(err):
		case errors.As(err, &pr):
			stop = fmt.Errorf("the node refused the token: %w", err)
		default:
			// Not an answer of the node (it is down, or the network): the
			// rows after this one would fail the same way.
			stop = fmt.Errorf("could not reach the node: %w", err)
		}
	}
	defer func() {
		// Once the rest are accounted for. If the import stops, the rows
		// left to try again fail with the reason it stops.
		switch {
		case len(again) == 0:
		case stop == nil:
			if err := im.awaitRetry(ctx, len(again), attempt, wait); err != nil {
				stop, attempt = err, importAttempts
				for _, r := range again {
					fail(r, err) // interrupted: counted, not lost
				}
				break
			}
			stop = im.rowsAttempt(ctx, again, attempt+1)
		default:
			attempt = importAttempts // so that fail counts them, not queues them
			for _, r := range again {
				fail(r, stop)
			}
		}
		result = stop
	}()
	reads, halt := im.readAll(ctx, rows)
	if halt >= 0 {
		fail(rows[halt], fmt.Errorf("read: %w", reads[halt].err))
		return stop // nothing of this slice was written yet
	}
	for i, r := range rows {
		if r.Record == nil {
			continue
		}
		old, err := reads[i].rec, reads[i].err
		rec := r.Record
		if err == nil {
			// What the file cannot say is kept from the record read, so
			// importing a file exported from this node changes nothing.
			if rec, err = r.Over(old); err != nil {
				fail(r, err)
				continue
			}
		}
		var ifMatch uint64
		switch {
		case err == nil && sameRecord(old, rec):
			im.unchanged++
			continue
		case err == nil:
			ifMatch = old.Version
		case !client.IsNotFound(err):
			fail(r, fmt.Errorf("read: %w", err))
			continue
		}
		todo = append(todo, pending{r, rec, ifMatch})
	}
	if len(todo) == 0 || stop != nil {
		return stop
	}
	results := make([]error, len(todo))
	oneByOne := im.oneByOne
	if !oneByOne {
		writes := make([]client.Write, len(todo))
		for i, p := range todo {
			writes[i] = client.Write{Method: http.MethodPut, ID: p.rec.ID, IfMatch: p.ifMatch, IfAbsent: p.ifMatch == 0 && !im.noIfAbsent, Record: p.rec}
		}
		out, err := im.c.Batch(ctx, writes)
		var p *client.Problem
		switch {
		case errors.As(err, &p) && (p.Status == http.StatusNotFound || p.Status == http.StatusMethodNotAllowed):
			im.oneByOne, oneByOne = true, true
		case errors.As(err, &p) && (p.Status == http.StatusRequestEntityTooLarge || p.Status == http.StatusBadRequest):
			// This node's body limit is below importBatchBytes, or one
			// row's body refuses the whole batch (nesting is counted from
			// the batch): each row on its own gets its own answer.
			oneByOne = true
		case err != nil:
			// The batch as a whole failed (the token, an election, a
			// proxy, the network): its rows failed, as a PUT each would have.
			for i := range results {
				results[i] = err
			}
		default:
			for i, r := range out {
				results[i] = r.Err
			}
		}
	}
	if oneByOne {
		for i, p := range todo {
			results[i] = im.put(ctx, p.rec, p.ifMatch)
		}
	}
	for i, p := range todo {
		if p.ifMatch == 0 && client.RefusesIfAbsent(results[i]) {
			// A node from before If-None-Match: for the rest of the run,
			// write absent rows as this row is written now.
			im.noIfAbsent = true
			results[i] = im.put(ctx, p.rec, 0)
		}
	}
	for i, p := range todo {
		if err := results[i]; err != nil {
			if p.ifMatch == 0 && client.IsPreconditionFailed(err) {
				err = fmt.Errorf("created by another writer since import read it (run the import again to update it): %w", err)
			}
			fail(p.row, err)
			continue
		}
		im.retriesSpent = false // the node takes writes again
		if p.ifMatch == 0 {
			im.created++
		} else {
			im.updated++
		}
	}
	return stop
}

// awaitRetry waits before rows are imported again: wait (the longest
// Retry-After they were answered), at least half a second, at most
// importRetryWait. It returns the context's error if that ends first.
func (im *importer) awaitRetry(ctx context.Context, rows, attempt int, wait time.Duration) error {
	wait = min(max(wait, 500*time.Millisecond), importRetryWait)
	fmt.Fprintf(im.stdout, "%s: %d rows answered 503 (attempt %d of %d); trying them again in %v\n", im.path, rows, attempt, importAttempts, wait)
	return sleepCtx(ctx, wait)
}

// put writes rec on its own: over version ifMatch, or, for a row read as
// absent (0), only if it is still absent, where the node can say so.
func (im *importer) put(ctx context.Context, rec *schema.Record, ifMatch uint64) error {
	var err error
	if ifMatch == 0 && !im.noIfAbsent {
		_, err = im.c.PutIfAbsent(ctx, rec.ID, rec)
	} else {
		_, err = im.c.Put(ctx, rec.ID, rec, ifMatch)
	}
	return err
}

// importReaders is how many rows import reads at once from a node that does
// not take reads by ids (one request a row, which were most of an import's
// time once the writes went in batches).
const importReaders = 8

type importRead struct {
	rec *schema.Record
	err error
}

// readAll reads the records of rows: in one request by ids (readMany), or
// else importReaders at a time. reads[i] is rows[i]'s (zero for a row
// without a record). A read whose failure stops the import (stopsImport)
// stops the others, and halt is its index (else -1): it costs the reads
// under way, not the rest of the slice's.
func (im *importer) readAll(ctx context.Context, rows []transfer.Row) (reads []importRead, halt int) {
	reads = make([]importRead, len(rows))
	if !im.noReadMany {
		ok, err := im.readMany(ctx, rows, reads)
		switch {
		case ok:
			return reads, -1
		case err != nil:
			// No answer, or the token refused: the first row stands for
			// the read, as for one read of its own.
			for i, r := range rows {
				if r.Record != nil {
					reads[i].err = err
					return reads, i
				}
			}
			return reads, -1
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var once sync.Once
	halt = -1
	next := make(chan int)
	var wg sync.WaitGroup
	for range importReaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if ctx.Err() != nil {
					continue
				}
				reads[i].rec, reads[i].err = im.c.Get(ctx, rows[i].Record.ID)
				if stopsImport(reads[i].err) {
					once.Do(func() { halt = i; cancel() })
				}
			}
		}()
	}
	for i, r := range rows {
		if r.Record != nil {
			next <- i
		}
	}
	close(next)
	wg.Wait()
	return reads, halt
}

// readMany reads the records of rows in one request (client.GetMany). It
// reports false with a nil error when rows are to be read one by one: for
// good when the node does not take such reads (a build from before ids=
// answers 400 naming it), this time on any other refusal; and the error
// when the read stops the import (stopsImport).
func (im *importer) readMany(ctx context.Context, rows []transfer.Row, reads []importRead) (bool, error) {
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		if r.Record != nil {
			ids = append(ids, r.Record.ID)
		}
	}
	if len(ids) == 0 {
		return true, nil
	}
	got, err := im.c.GetMany(ctx, ids)
	if err != nil {
		// An answer cut short (one record failed to read part-way through)
		// is not a node gone: the rows are read one by one, this time.
		if stopsImport(err) && !errors.Is(err, client.ErrBrokenAnswer) {
			return false, err
		}
		// A node from before ids= refuses it as an unknown parameter, and
		// one from before consistent lists refuses consistent (named
		// first, as it sorts first): for good, since reads one by one
		// take consistent on any build. Anything else (a 5xx, a rate
		// limit, a proxy's limit): this time only.
		var pr *client.Problem
		if errors.As(err, &pr) && pr.Status == http.StatusBadRequest && len(pr.Errors) > 0 &&
			(pr.Errors[0].Path == "ids" || pr.Errors[0].Path == "consistent") {
			im.noReadMany = true
		}
		return false, nil
	}
	notFound := &client.Problem{Status: http.StatusNotFound, Title: "Not found"}
	for i, r := range rows {
		if r.Record == nil {
			continue
		}
		if rec, ok := got[r.Record.ID]; ok {
			reads[i].rec = rec
		} else {
			reads[i].err = notFound
		}
	}
	return true, nil
}

// stopsImport reports whether err, a read's or a write's, stops the import:
// no answer of the node's (it is down, or the network), or the token refused.
func stopsImport(err error) bool {
	if err == nil {
		return false
	}
	var pr *client.Problem
	return !errors.As(err, &pr) || pr.Status == http.StatusUnauthorized || pr.Status == http.StatusForbidden
}

// sameRecord reports whether importing rec over old would change nothing.
func sameRecord(old, rec *schema.Record) bool {
	if old.Catalogue != rec.Catalogue || old.Visibility != rec.Visibility {
		return false
	}
	if (old.ExpiresAt == nil) != (rec.ExpiresAt == nil) || old.ExpiresAt != nil && !old.ExpiresAt.Equal(*rec.ExpiresAt) {
		return false
	}
	var a, b any
	if json.Unmarshal(old.Body, &a) != nil || json.Unmarshal(rec.Body, &b) != nil {
		return bytes.Equal(old.Body, rec.Body)
	}
	return reflect.DeepEqual(a, b)
}

func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, exportUsage); fs.PrintDefaults() }
	nodeURL := fs.String("node", envOr("LIANDONG_NODE", "http://127.0.0.1:8700"), "API URL of a node")
	tokenFile := fs.String("token", os.Getenv("LIANDONG_TOKEN_FILE"), "file holding a token with the read scope (none: public records only)")
	catalogue := fs.String("catalogue", "", "supply, need or expert")
	origin := fs.String("origin", "", "only records of this centre")
	industry := fs.String("industry", "", "only records of this industry code (e.g. new-materials)")
	status := fs.String("status", "", "only needs with this status (open, matched, closed)")
	query := fs.String("q", "", "only records matching this full-text query (Chinese or English words)")
	updatedSince := fs.String("updated-since", "", "only records updated at or after this time (RFC 3339, e.g. 2026-01-01T00:00:00Z)")
	format := fs.String("format", "", "csv, xlsx or jsonl (default: from the --out file name, else csv)")
	encoding := fs.String("encoding", transfer.EncodingUTF8, "CSV encoding: utf-8 or gb18030")
	noBOM := fs.Bool("no-bom", false, "no UTF-8 byte-order mark (Excel needs it to read UTF-8)")
	out := fs.String("out", "", "file to write (default: standard output)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q\n%s", fs.Arg(0), exportUsage)
	}
	if err := checkNodeURL(*nodeURL); err != nil {
		return err
	}
	if !schema.KnownCatalogue(*catalogue) {
		return usagef("--catalogue %q: want supply, need or expert", *catalogue)
	}
	var since time.Time
	if *updatedSince != "" {
		t, err := time.Parse(time.RFC3339, *updatedSince)
		if err != nil {
			return usagef("--updated-since %q: want RFC 3339, e.g. 2026-01-01T00:00:00Z", *updatedSince)
		}
		since = t
	}
	if *format == "" {
		*format = transfer.FormatCSV
		if *out != "" {
			*format = transfer.FormatOf(*out)
		}
	}
	switch *format = strings.ToLower(*format); *format {
	case transfer.FormatCSV, transfer.FormatXLSX, transfer.FormatJSONL:
	default:
		return usagef("--format %q: want csv, xlsx or jsonl", *format)
	}
	token, err := readTokenFile(*tokenFile)
	if err != nil {
		return err
	}
	var w io.Writer = stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("create %s: %w", *out, err)
		}
		defer f.Close()
		w = f
	}
	tw, err := transfer.NewWriter(w, *format, *catalogue, *encoding, !*noBOM)
	if err != nil {
		return usagef("%v", err)
	}
	c := client.New(*nodeURL, token)
	n := 0
	prog := newProgress(stderr, "export")
	// Sort by id: relevance order (the default with --q) may move a record across
	// a page boundary while it is being written; id order never does.
	opts := client.ListOptions{Catalogue: *catalogue, Origin: *origin, Industry: *industry, Status: *status,
		Q: *query, Sort: "id", UpdatedSince: since, Limit: 500}
	for rec, err := range c.All(ctx, opts) {
		if err != nil {
			prog.done(n)
			return fmt.Errorf("export after %d records: %w", n, err)
		}
		if err := tw.Write(rec); err != nil {
			return err
		}
		n++
		prog.update(n)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	prog.done(n)
	fmt.Fprintf(stderr, "export: %d %s records\n", n, *catalogue)
	return nil
}
