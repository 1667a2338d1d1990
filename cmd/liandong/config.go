package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
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
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "LIANDONG_") {
			env[k] = v
		}
	}
	if err := applyEnv(reflect.ValueOf(&cfg).Elem(), "LIANDONG", env); err != nil {
		return cfg, err
	}
	return cfg, nil
}

var durationType = reflect.TypeOf(time.Duration(0))

func applyEnv(v reflect.Value, prefix string, env map[string]string) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
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
