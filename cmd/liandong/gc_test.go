package main

import "testing"

func TestGCSettingsYieldToTheEnvironment(t *testing.T) {
	for _, c := range []struct {
		env            map[string]string
		percent, limit int64
	}{
		{map[string]string{}, defaultGCPercent, defaultMemoryLimit},
		{map[string]string{"GOGC": "100"}, -1, defaultMemoryLimit},
		{map[string]string{"GOMEMLIMIT": "512MiB"}, defaultGCPercent, -1},
		{map[string]string{"GOGC": "off", "GOMEMLIMIT": "2GiB"}, -1, -1},
	} {
		p, l := gcSettings(func(k string) string { return c.env[k] })
		if int64(p) != c.percent || l != c.limit {
			t.Errorf("%v: GC percent %d, limit %d; want %d, %d", c.env, p, l, c.percent, c.limit)
		}
	}
}
