package main

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"liandong/node/server"
)

// configYAML is cfg as a config file would hold it (the Logger, which no file
// sets, left out).
func configYAML(t *testing.T, cfg server.Config) []byte {
	t.Helper()
	cfg.Logger = nil
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatalf("marshal config: %v", err)
	}
	return out
}

// FuzzReadConfig: a config file of any content is read or refused with an
// error naming the file, never a panic; a file that is read re-encodes to a
// file that reads to the same config.
func FuzzReadConfig(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzReadConfig.
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "liandong.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := readConfig(path, nil)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		again := configYAML(t, cfg)
		path2 := filepath.Join(dir, "again.yaml")
		if err := os.WriteFile(path2, again, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg2, err := readConfig(path2, nil)
		if err != nil {
			t.Fatalf("re-encoded config refused: %v\n%s", err, again)
		}
		if got := configYAML(t, cfg2); string(got) != string(again) {
			t.Fatalf("config changed on a round trip:\n%s\nthen\n%s", again, got)
		}
	})
}

// envForm is v as an environment variable would set it, the inverse of
// applyEnv's parsing.
func envForm(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		return time.Duration(v.Int()).String()
	case v.Kind() == reflect.String:
		return v.String()
	case v.Kind() == reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	case v.Kind() == reflect.Int:
		return strconv.FormatInt(v.Int(), 10)
	case v.Kind() == reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case v.Kind() == reflect.Slice:
		return strings.Join(v.Interface().([]string), ",")
	}
	panic("envForm: unhandled config field type " + v.Type().String())
}

// configField finds the field applyEnv sets from variable name, if any.
func configField(v reflect.Value, prefix, name string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		key := envKey(prefix, t.Field(i))
		switch {
		case key == "":
		case t.Field(i).Type.Kind() == reflect.Struct:
			if fv, ok := configField(v.Field(i), key, name); ok {
				return fv, true
			}
		case key == name:
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// FuzzApplyEnv: a LIANDONG_… variable of any name and value is applied or
// refused with an error naming the variable; an applied value, written back
// as a variable, applies to the same value.
func FuzzApplyEnv(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzApplyEnv.
	f.Fuzz(func(t *testing.T, key, value string) {
		if strings.ContainsAny(key, "=\x00") {
			return // not a variable's name
		}
		name := "LIANDONG_" + key
		environ := []string{"PATH=/bin", name + "=" + value}
		cfg, err := readConfig("", environ)
		known, isKey := configField(reflect.ValueOf(&cfg).Elem(), "LIANDONG", name)
		switch {
		case err != nil:
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("error does not name %s: %v", name, err)
			}
			return
		case !isKey && !slices.Contains(otherEnv, name) &&
			!slices.ContainsFunc(otherEnvPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }):
			t.Fatalf("%s names no config key, yet was accepted", name)
		case !isKey:
			return
		}
		if known.Kind() == reflect.String && known.String() != value {
			t.Fatalf("%s=%q set %q", name, value, known.String())
		}
		again := envForm(known)
		cfg2, err := readConfig("", []string{name + "=" + again})
		if err != nil {
			t.Fatalf("%s=%q (the applied value written back) refused: %v", name, again, err)
		}
		got, _ := configField(reflect.ValueOf(&cfg2).Elem(), "LIANDONG", name)
		if envForm(got) != again {
			t.Fatalf("%s=%q applied %q, written back %q applied %q", name, value, again, again, envForm(got))
		}
	})
}
