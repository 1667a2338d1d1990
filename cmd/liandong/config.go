package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"liandong/node/server"
)

// loadConfig reads a YAML config file over the defaults, then applies LIANDONG_…
// environment variables: every key has one, named by its path (raft.addr →
// LIANDONG_RAFT_ADDR); lists are comma-separated. Every error is a configError.
func loadConfig(path string, environ []string) (server.Config, error) {
	cfg, err := readConfig(path, environ)
	if err != nil {
		return cfg, configError{err}
	}
	return cfg, nil
}

// emptyDocument reports whether a YAML document holds nothing: no content, or
// null.
func emptyDocument(doc *yaml.Node) bool {
	if len(doc.Content) == 0 {
		return true
	}
	n := doc.Content[0]
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func readConfig(path string, environ []string) (server.Config, error) {
	cfg := server.Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); errors.Is(err, io.EOF) {
			// yaml.v3 says only "EOF" for a file with no document.
			return cfg, fmt.Errorf("config %s is empty (keys are listed in deploy/examples/)", path)
		} else if err != nil {
			return cfg, fmt.Errorf("config %s: %w (keys are listed in deploy/examples/)", path, err)
		}
		// A second document (a "---" line, as concatenated files or an
		// appended override leave) would otherwise be dropped unread; empty
		// ones (a trailing "---", comments) hold nothing to drop.
		for {
			var more yaml.Node
			err := dec.Decode(&more)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return cfg, fmt.Errorf("config %s: %w (keys are listed in deploy/examples/)", path, err)
			}
			if !emptyDocument(&more) {
				return cfg, fmt.Errorf("config %s holds more than one YAML document (a line \"---\"): put every key in one document", path)
			}
		}
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "LIANDONG_") {
			env[k] = v
		}
	}
	if err := checkEnvNames(env); err != nil {
		return cfg, err
	}
	if err := applyEnv(reflect.ValueOf(&cfg).Elem(), "LIANDONG", env); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// otherEnv are the LIANDONG_… variables that are not config keys: read by other
// commands, by builds with -tags failpoints, by deploy/compose or by the
// tests, and so perhaps set in the environment serve starts in.
var otherEnv = []string{
	"LIANDONG_NODE", "LIANDONG_TOKEN_FILE", // import, export, status, centre, federation publish
	"LIANDONG_FAULTS_FILE", "LIANDONG_FAILPOINTS", // -tags failpoints
	"LIANDONG_IMAGE", "LIANDONG_DATA", "LIANDONG_BIND", // deploy/compose
	"LIANDONG_HQ_PORT", "LIANDONG_TIANJIN_PORT", "LIANDONG_HEBEI_PORT", "LIANDONG_XIONGAN_PORT",
	"LIANDONG_ARTEFACTS", "LIANDONG_TEST_LOG", "LIANDONG_KILL_CYCLES", "LIANDONG_CHROMIUM", // tests
	"LIANDONG_IT_ORPHAN_HELPER",
}

// otherEnvPrefixes are families of test variables (node's crash tests).
var otherEnvPrefixes = []string{"LIANDONG_CRASH_"}

// checkEnvNames refuses a LIANDONG_… variable that names no config key: a
// misspelt one (LIANDONG_ROOT_KEY for LIANDONG_ROOT_KEYS) would otherwise be
// ignored in silence and the node run without the setting.
func checkEnvNames(env map[string]string) error {
	known := configEnvNames(reflect.TypeOf(server.Config{}), "LIANDONG", nil)
	var errs []error
	for name := range env {
		if slices.Contains(known, name) || slices.Contains(otherEnv, name) ||
			slices.ContainsFunc(otherEnvPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		msg := fmt.Sprintf("environment variable %s is no config key", name)
		if near := nearest(name, known); near != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", near)
		}
		errs = append(errs, errors.New(msg))
	}
	if len(errs) == 0 {
		return nil
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return fmt.Errorf("%w; every key's variable is its path, e.g. raft.addr → LIANDONG_RAFT_ADDR (keys are listed in deploy/examples/)", errors.Join(errs...))
}

// configEnvNames appends the variable of every settable config key, as applyEnv
// names them.
func configEnvNames(t reflect.Type, prefix string, names []string) []string {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := envKey(prefix, f)
		switch {
		case name == "":
		case f.Type.Kind() == reflect.Struct:
			names = configEnvNames(f.Type, name, names)
		default:
			names = append(names, name)
		}
	}
	return names
}

// envKey is the variable of config field f under prefix, as applyEnv reads
// it ("" for a field that is no config key).
func envKey(prefix string, f reflect.StructField) string {
	tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
	if tag == "" || tag == "-" {
		return ""
	}
	return prefix + "_" + strings.ToUpper(tag)
}

// nearest returns the candidate closest to name in edit distance, if it is
// close enough to be a likely misspelling; else "".
func nearest(name string, candidates []string) string {
	best, bestD := "", 4 // more edits than this is another word, not a typo
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes (the
// names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var durationType = reflect.TypeOf(time.Duration(0))

func applyEnv(v reflect.Value, prefix string, env map[string]string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := envKey(prefix, f)
		if name == "" {
			continue
		}
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct {
			if err := applyEnv(fv, name, env); err != nil {
				return err
			}
			continue
		}
		s, ok := env[name]
		if !ok {
			continue
		}
		switch {
		case f.Type == durationType:
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%s=%q: want a duration such as 2s or 5m", name, s)
			}
			fv.SetInt(int64(d))
		case f.Type.Kind() == reflect.String:
			fv.SetString(s)
		case f.Type.Kind() == reflect.Uint64:
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return fmt.Errorf("%s=%q: want a whole number", name, s)
			}
			fv.SetUint(n)
		case f.Type.Kind() == reflect.Int:
			n, err := strconv.ParseInt(s, 10, strconv.IntSize)
			if err != nil {
				return fmt.Errorf("%s=%q: want a whole number", name, s)
			}
			fv.SetInt(n)
		case f.Type.Kind() == reflect.Bool:
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("%s=%q: want true or false", name, s)
			}
			fv.SetBool(b)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.String:
			var parts []string
			for _, p := range strings.Split(s, ",") {
				if p = strings.TrimSpace(p); p != "" {
					parts = append(parts, p)
				}
			}
			fv.Set(reflect.ValueOf(parts))
		}
	}
	return nil
}
