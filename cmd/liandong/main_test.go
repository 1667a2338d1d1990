package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"liandong/auth"
	"liandong/node/server"
)

// runCLI runs one command in-process with a deadline and returns exit code and output.
func runCLI(t *testing.T, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(args, &out, &out) }()
	select {
	case code := <-done:
		return code, out.String()
	case <-time.After(timeout):
		t.Fatalf("liandong %v did not return within %v; output:\n%s", args, timeout, out.String())
		return 0, ""
	}
}

// TestOperatorMistakes: every mistake gets a non-zero exit and a message saying
// what is wrong and what to do, never a panic or a hang.
func TestOperatorMistakes(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	devDir := t.TempDir()
	// Prepare a dev data directory once, then break it in different ways.
	prepare := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "data")
		code, out := runCLI(t, 10*time.Second, "federation", "init", "--data", dir, "--centre", "tianjin")
		if code != 0 {
			t.Fatalf("federation init: %d %s", code, out)
		}
		return dir
	}
	badYAML := filepath.Join(devDir, "bad.yaml")
	os.WriteFile(badYAML, []byte("centre: tianjin\ndata_dir: /tmp/x\nhttp_addr: 1\n"), 0o600)
	invalid := filepath.Join(devDir, "invalid.yaml")
	os.WriteFile(invalid, []byte("centre: Tianjin!\n"), 0o600)
	twoDocs := filepath.Join(devDir, "two.yaml")
	os.WriteFile(twoDocs, []byte("centre: tianjin\nanonymous_reads: true\n---\nanonymous_reads: false\n"), 0o600)

	cases := []struct {
		name  string
		args  func(t *testing.T) []string
		code  int
		wants []string
	}{
		{"no arguments", func(*testing.T) []string { return nil }, 2, []string{"Usage"}},
		{"unknown command", func(*testing.T) []string { return []string{"srve"} }, 2, []string{`unknown command "srve"`}},
		{"serve without config", func(*testing.T) []string { return []string{"serve"} }, 2, []string{"--config FILE", "--dev --data DIR"}},
		{"missing config file", func(*testing.T) []string { return []string{"serve", "--config", "/nonexistent/x.yaml"} }, 2, []string{"read config", "no such file"}},
		{"unknown config key", func(*testing.T) []string { return []string{"serve", "--config", badYAML} }, 2, []string{"http_addr", "not found"}},
		{"invalid centre id", func(*testing.T) []string { return []string{"serve", "--config", invalid} }, 2, []string{"centre", "data_dir: not set"}},
		{"two YAML documents", func(*testing.T) []string { return []string{"serve", "--config", twoDocs} }, 2, []string{"more than one YAML document", "one document"}},
		{"port in use", func(t *testing.T) []string {
			return []string{"serve", "--dev", "--data", t.TempDir(), "--http", busy.Addr().String()}
		}, 1, []string{"listen for HTTP", "choose another with --http"}},
		{"missing key", func(t *testing.T) []string {
			dir := prepare(t)
			os.Remove(filepath.Join(dir, "keys", "record.key"))
			return []string{"serve", "--data", dir, "--centre", "tianjin", "--config", writeConfig(t, dir)}
		}, 1, []string{"record-signing key", "liandong keygen"}},
		{"world-readable key", func(t *testing.T) []string {
			dir := prepare(t)
			os.Chmod(filepath.Join(dir, "keys", "token.key"), 0o644)
			return []string{"serve", "--config", writeConfig(t, dir)}
		}, 1, []string{"chmod 600"}},
		{"corrupt state file", func(t *testing.T) []string {
			dir := prepare(t)
			os.WriteFile(filepath.Join(dir, "state.db"), bytes.Repeat([]byte("不是数据库"), 2000), 0o600)
			return []string{"serve", "--config", writeConfig(t, dir)}
		}, 1, []string{"state file", "restore from a snapshot or a peer"}},
		{"bundle missing", func(t *testing.T) []string {
			dir := prepare(t)
			os.Remove(filepath.Join(dir, "bundle.json"))
			return []string{"serve", "--config", writeConfig(t, dir)}
		}, 1, []string{"trust bundle", "federation init"}},
		{"unwritable cpu profile", func(*testing.T) []string {
			return []string{"bench", "write", "--clients", "1", "--duration", "1s", "--cpuprofile", "/nonexistent/cpu.prof"}
		}, 1, []string{"--cpuprofile", "no such file"}},
		{"batch of too many records", func(*testing.T) []string {
			return []string{"bench", "batch", "--batch", "501"}
		}, 2, []string{"--batch 501", "1-500"}},
		{"catch-up profiled with another scenario", func(*testing.T) []string {
			return []string{"bench", "write", "catchup", "--cpuprofile", filepath.Join(devDir, "cpu.prof")}
		}, 2, []string{"run catchup on its own"}},
		{"token without subject", func(*testing.T) []string { return []string{"token", "issue", "--data", devDir} }, 2, []string{"--sub NAME is required"}},
		{"token with unknown scope", func(t *testing.T) []string {
			return []string{"token", "issue", "--data", prepare(t), "--sub", "p", "--scope", "read,root"}
		}, 2, []string{`"root"`, "read, pii, write, admin"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCLI(t, 30*time.Second, tc.args(t)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tc.code, out)
			}
			for _, w := range tc.wants {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
				t.Fatalf("panic:\n%s", out)
			}
		})
	}
}

// TestExitStatus: a mistake in the command line or the configuration exits 2,
// which deploy/README.md promises and the systemd unit's
// RestartPreventExitStatus=2 relies on; anything else that fails exits 1.
func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	conf := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := "centre: tianjin\ndata_dir: " + filepath.Join(dir, "data") + "\nhttp: 127.0.0.1:0\n"
	walDir := filepath.Join(dir, "waldata")
	if code, out := runCLI(t, 30*time.Second, "federation", "init", "--data", walDir, "--centre", "tianjin"); code != 0 {
		t.Fatal(out)
	}
	if err := os.MkdirAll(filepath.Join(walDir, "raft", "wal"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(walDir, "raft", "wal", "00000000000000000001-0000000000000000.wal"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing config file", []string{"serve", "--config", "/nonexistent.yaml"}, 2, "no such file"},
		{"empty config file", []string{"serve", "--config", conf("empty.yaml", "")}, 2, "is empty"},
		{"unknown key", []string{"serve", "--config", conf("key.yaml", base+"anonymous_read: false\n")}, 2, "anonymous_read"},
		{"bad duration", []string{"serve", "--config", conf("dur.yaml", base+"shutdown_timeout: twenty\n")}, 2, "twenty"},
		{"bad log store", []string{"serve", "--config", conf("lsm.yaml", base+"raft:\n  log_store: lsm\n")}, 2, "raft.log_store"},
		{"bad segment size", []string{"serve", "--config", conf("seg.yaml", base+"raft:\n  wal_segment_size: 100\n")}, 2, "raft.wal_segment_size"},
		{"unknown serve flag", []string{"serve", "--bogus"}, 2, "-bogus"},
		{"bad status flag value", []string{"status", "--max-lag", "banana"}, 2, "banana"},
		{"flag without value", []string{"export", "--catalogue"}, 2, "needs an argument"},
		{"bad key prefix", []string{"keygen", "--out", filepath.Join(dir, "k.key"), "--prefix", "Bad Prefix"}, 2, "--prefix"},
		// 0 would be no bound at all (ResponseHeaderTimeout 0): a wedged
		// node's probe, and with it the backup, waited for ever.
		{"centre timeout not positive", []string{"centre", "backup", "--node", "http://127.0.0.1:1", "--token", conf("t0", "x"), "--out", filepath.Join(dir, "b.db"), "--timeout", "0s"}, 2, "--timeout must be positive"},
		{"publish without a scheme", []string{"federation", "publish", "--bundle", conf("b.json", "{}"), "--node", "127.0.0.1:8702", "--token", conf("t", "x")}, 2, "http://"},
		// The data directory holds a WAL and the config asks for bolt: a
		// setting to correct, which a restart cannot mend.
		{"log store mismatch", []string{"serve", "--config", conf("mm.yaml", strings.Replace(base, filepath.Join(dir, "data"), walDir, 1)+"raft:\n  log_store: bolt\n")}, 2, "raft.log_store does not match"},
		// Valid configuration, but no keys in the data directory: a failure
		// to start, which a restart after a fix may mend.
		{"start failure", []string{"serve", "--config", conf("ok.yaml", base)}, 1, "record-signing key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCLI(t, 30*time.Second, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %d with %q; output:\n%s", code, tc.code, tc.want, out)
			}
		})
	}
	if exitShutdownHung == exitMistake {
		t.Fatal("the shutdown watchdog's exit status would stop systemd restarting the node")
	}
}

func writeConfig(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.yaml")
	cfg := "centre: tianjin\ndata_dir: " + dir + "\nhttp: 127.0.0.1:0\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTokenIssueAndEnvOverrides: environment variables override every config key,
// with a clear error for a bad value; token issue reads key and bundle from a data dir.
func TestTokenIssueAndEnvOverrides(t *testing.T) {
	cfg, err := loadConfig("", []string{"LIANDONG_CENTRE=hebei", "LIANDONG_RAFT_ADDR=127.0.0.1:7000", "LIANDONG_P2P_LISTEN=/ip4/127.0.0.1/tcp/1, /ip4/127.0.0.1/udp/1/quic-v1", "LIANDONG_P2P_ANTI_ENTROPY_INTERVAL=3s", "LIANDONG_ANONYMOUS_READS=false", "LIANDONG_RAFT_WAL_SEGMENT_SIZE=1048576", "OTHER=1"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Centre != "hebei" || cfg.Raft.Addr != "127.0.0.1:7000" || len(cfg.P2P.Listen) != 2 || cfg.P2P.AntiEntropyInterval != 3*time.Second || cfg.AnonymousReads || cfg.Raft.WALSegmentSize != 1<<20 {
		t.Fatalf("env not applied: %+v", cfg)
	}
	if _, err := loadConfig("", []string{"LIANDONG_RAFT_WAL_SEGMENT_SIZE=64MiB"}); err == nil || !strings.Contains(err.Error(), "LIANDONG_RAFT_WAL_SEGMENT_SIZE") {
		t.Fatalf("bad int: %v", err)
	}
	if _, err := loadConfig("", []string{"LIANDONG_ANONYMOUS_READS=maybe"}); err == nil || !strings.Contains(err.Error(), "LIANDONG_ANONYMOUS_READS") {
		t.Fatalf("bad bool: %v", err)
	}

	dir := filepath.Join(t.TempDir(), "d")
	if code, out := runCLI(t, 10*time.Second, "federation", "init", "--data", dir, "--centre", "tianjin", "--federation", "jjj"); code != 0 {
		t.Fatal(out)
	}
	code, out := runCLI(t, 10*time.Second, "token", "issue", "--data", dir, "--sub", "tju-tto", "--scope", "read pii", "--ttl", "1h")
	if code != 0 || strings.Count(strings.TrimSpace(out), ".") != 2 {
		t.Fatalf("token issue: %d %q", code, out)
	}
}

// TestExampleConfigsParse keeps deploy/examples in step with the config struct.
func TestExampleConfigsParse(t *testing.T) {
	files, _ := filepath.Glob("../../deploy/examples/*.yaml")
	if len(files) < 4 {
		t.Fatalf("found %d example configs", len(files))
	}
	for _, f := range files {
		cfg, err := loadConfig(f, nil)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if want := strings.TrimSuffix(filepath.Base(f), ".yaml"); cfg.Centre != want {
			t.Fatalf("%s configures centre %q", f, cfg.Centre)
		}
	}
}

// TestUnknownEnvRefused: a LIANDONG_… variable that names no config key (a
// misspelling) stops serve with exit 2 instead of being ignored, and names
// the nearest key; the variables other commands and tools read pass.
func TestUnknownEnvRefused(t *testing.T) {
	cases := []struct {
		env     string
		refused bool
		want    string
	}{
		{"LIANDONG_ANONYMOUS_READ=false", true, "did you mean LIANDONG_ANONYMOUS_READS?"},
		{"LIANDONG_ROOT_KEY=root-0123abcd", true, "did you mean LIANDONG_ROOT_KEYS?"},
		{"LIANDONG_RAFT_ADR=127.0.0.1:7000", true, "did you mean LIANDONG_RAFT_ADDR?"},
		{"LIANDONG_FROBNICATE=1", true, "LIANDONG_FROBNICATE is no config key;"},
		{"LIANDONG_ROOT_KEYS=root-0123abcd", false, ""},
		{"LIANDONG_P2P_ANTI_ENTROPY_INTERVAL=1s", false, ""},
		{"LIANDONG_NODE=http://127.0.0.1:8701", false, ""},
		{"LIANDONG_TOKEN_FILE=/tmp/t", false, ""},
		{"LIANDONG_FAULTS_FILE=/tmp/f", false, ""},
		{"LIANDONG_CRASH_DIR=/tmp/c", false, ""},
		{"NOT_LIANDONG_X=1", false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.env, func(t *testing.T) {
			_, err := loadConfig("", []string{tc.env})
			if !tc.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
			if exitCode(err) != 2 {
				t.Fatalf("exit %d for %v", exitCode(err), err)
			}
		})
	}
	t.Run("serve", func(t *testing.T) {
		t.Setenv("LIANDONG_ROOT_KEY", "root-0123abcd")
		code, out := runCLI(t, 10*time.Second, "serve", "--dev", "--data", t.TempDir())
		if code != 2 || !strings.Contains(out, "LIANDONG_ROOT_KEY is no config key (did you mean LIANDONG_ROOT_KEYS?)") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
}

// TestWarnConfig: serve warns, once it knows the trust bundle, when no root key
// is pinned (but not with --dev) and when p2p.block names no member.
func TestWarnConfig(t *testing.T) {
	root, err := auth.GenerateKey("root")
	if err != nil {
		t.Fatal(err)
	}
	b := &auth.Bundle{Signers: []auth.Key{{ID: root.ID, Public: root.Public}}, Members: []auth.Member{{ID: "hq"}, {ID: "tianjin"}}}
	cases := []struct {
		name   string
		roots  []string
		block  []string
		dev    bool
		wants  []string
		absent []string
	}{
		{"unpinned", nil, nil, false, []string{"no root key pinned", "root_keys", root.ID + " = " + auth.KeyFingerprint(root.Public)}, nil},
		{"unpinned dev", nil, nil, true, nil, []string{"WARN"}},
		{"pinned", []string{auth.KeyFingerprint(root.Public)}, []string{"tianjin"}, false, nil, []string{"WARN"}},
		{"block typo", []string{root.ID}, []string{"tainjin", "hq"}, false, []string{"p2p.block names no centre", "entry=tainjin", `centres="hq, tianjin"`}, []string{"entry=hq"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			cfg := server.Default()
			cfg.RootKeys, cfg.P2P.Block = tc.roots, tc.block
			warnConfig(newLogger(&buf, "info"), cfg, b, tc.dev)
			checkText(t, "log", buf.String(), tc.wants, tc.absent)
		})
	}
}

// captureStderr runs f with os.Stderr redirected, for the commands whose flag
// sets print their defaults there.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		var b bytes.Buffer
		b.ReadFrom(r)
		done <- b.String()
	}()
	f()
	os.Stderr = saved
	w.Close()
	return <-done
}

// TestHelpText: the overview lists the flags that exist and no flag that does
// not; flag usages name their argument type, not a backquoted command (Go's
// flag package takes `text` in a usage as the argument's name).
func TestHelpText(t *testing.T) {
	code, help := runCLI(t, 5*time.Second, "help")
	if code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	for _, w := range []string{"--bundle FILE", "--data DIR", "demo [--dir DIR] [--base-port 8700] [--replicas 1|3|5]", "keygen --out FILE [--prefix ID] [--p2p]",
		"purge-origin", "audit", "--max-lag", "LIANDONG_NODE", "add-peer", "XLSX"} {
		if !strings.Contains(help, w) {
			t.Errorf("help lacks %q", w)
		}
	}
	if strings.Contains(help, "token issue --key FILE --centre ID --federation") {
		t.Errorf("help shows token issue's non-existent --federation flag")
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"federation", "add-centre", "-h"}, "-member string"},
		{[]string{"federation", "rotate-key", "-h"}, "-key string"},
		{[]string{"federation", "add-peer", "-h"}, "-peer-id ID"},
	}
	for _, tc := range cases {
		var code int
		out := captureStderr(t, func() { code, _ = runCLI(t, 5*time.Second, tc.args...) })
		if code != 0 || !strings.Contains(out, tc.want) || strings.Contains(out, "-member liandong") || strings.Contains(out, "-key liandong") {
			t.Errorf("%v: exit %d, want %q in:\n%s", tc.args, code, tc.want, out)
		}
	}
}

// TestListenHints: a busy port is blamed on another process and the hint names
// the flag of the command that was run; another listen error gets no such hint.
func TestListenHints(t *testing.T) {
	var busy net.Listener
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		// The demo's hq takes --base-port + 1, and the base may be at most 65480.
		if p := l.Addr().(*net.TCPAddr).Port; p >= 2 && p <= 65481 {
			busy = l
			break
		}
		l.Close()
	}
	if busy == nil {
		t.Skip("no usable port")
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	cases := []struct {
		name   string
		args   []string
		wants  []string
		absent []string
	}{
		{"serve, port busy", []string{"serve", "--dev", "--data", t.TempDir(), "--http", busy.Addr().String()},
			[]string{"is another process using the port?", "choose another with --http"}, []string{"--base-port"}},
		{"serve, no port", []string{"serve", "--dev", "--data", t.TempDir(), "--http", "localhost"},
			[]string{"missing port in address"}, []string{"another process"}},
		{"demo, port busy", []string{"demo", "--dir", t.TempDir(), "--base-port", strconv.Itoa(port - 1)},
			[]string{"is another process using the port?", "--base-port"}, []string{"--http"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCLI(t, 60*time.Second, tc.args...)
			if code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", code, out)
			}
			checkText(t, "output", out, tc.wants, tc.absent)
		})
	}
}

// TestClientCommandArgs: the client commands take LIANDONG_NODE and
// LIANDONG_TOKEN_FILE for --node and --token, refuse a --node without its
// scheme saying so, take import's flags after FILE, and answer -h with help.
func TestClientCommandArgs(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tok, []byte("x.y.z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "nope.csv")
	cases := []struct {
		name   string
		env    bool // LIANDONG_NODE (nothing listens there) and LIANDONG_TOKEN_FILE set
		args   []string
		code   int
		wants  []string
		absent []string
	}{
		{"export, no scheme", false, []string{"export", "--node", "127.0.0.1:8702", "--catalogue", "supply"}, 2, []string{`--node "127.0.0.1:8702"`, "http://127.0.0.1:8702"}, []string{"first path segment"}},
		{"import, no scheme", false, []string{"import", "--node", "127.0.0.1:8702", missing}, 2, []string{"http://127.0.0.1:8702"}, nil},
		{"centre, no scheme", false, []string{"centre", "replicas", "--node", "127.0.0.1:8702", "--token", tok}, 2, []string{"http://127.0.0.1:8702"}, nil},
		{"import, flags after FILE", false, []string{"import", "--node", "http://127.0.0.1:1", "--centre", "tianjin", missing, "--skip-errors", "--dry-run"}, 1,
			[]string{"open " + missing + ": no such file"}, []string{"want one FILE", "open " + missing + ": open"}},
		{"import, two files", false, []string{"import", "--centre", "tianjin", missing, "--dry-run", missing}, 2, []string{"want one FILE to import, got 2"}, nil},
		{"import, files after --", false, []string{"import", "--centre", "tianjin", "--", missing, "-odd.csv"}, 2, []string{"want one FILE to import, got 2"}, []string{"flag provided but not defined"}},
		{"centre from environment", true, []string{"centre", "replicas"}, 1, []string{"127.0.0.1:1"}, []string{"are required"}},
		{"federation publish from environment", true, []string{"federation", "publish", "--bundle", missing}, 1, []string{"nope.csv"}, []string{"are required"}},
		{"centre help", false, []string{"centre", "-h"}, 0, []string{"purge-origin", "LIANDONG_NODE"}, nil},
		{"centre unknown subcommand", false, []string{"centre", "replica"}, 2, []string{`unknown subcommand "replica"`}, []string{"are required"}},
		{"token help", false, []string{"token", "-h"}, 0, []string{"token issue --sub NAME"}, []string{"want 'token issue'"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env {
				t.Setenv("LIANDONG_NODE", "http://127.0.0.1:1")
				t.Setenv("LIANDONG_TOKEN_FILE", tok)
			}
			var code int
			var out string
			stderr := captureStderr(t, func() { code, out = runCLI(t, 20*time.Second, tc.args...) })
			out += stderr
			if code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.code, out)
			}
			checkText(t, "output", out, tc.wants, tc.absent)
		})
	}
}

// checkText reports each of wants that text (the command's output, or its
// log) lacks, and each of absent it holds.
func checkText(t *testing.T, what, text string, wants, absent []string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
	for _, a := range absent {
		if strings.Contains(text, a) {
			t.Errorf("%s has %q:\n%s", what, a, text)
		}
	}
}

// TestConfigDocumentMarkers: a config of one document read with YAML's
// document markers, or followed by empty documents, is read; a second
// document with keys is refused (TestOperatorMistakes).
func TestConfigDocumentMarkers(t *testing.T) {
	for name, text := range map[string]string{
		"start marker":         "---\ncentre: tianjin\n",
		"end marker":           "centre: tianjin\n...\n",
		"trailing start":       "centre: tianjin\n---\n",
		"trailing comment doc": "centre: tianjin\n---\n# nothing here\n",
	} {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if cfg, err := readConfig(p, nil); err != nil || cfg.Centre != "tianjin" {
			t.Errorf("%s: centre %q, %v", name, cfg.Centre, err)
		}
	}
}
