package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"liandong/node/server"
)

// TestOpsDeployConfigs: every node config under deploy/ (the examples and the
// per-pod configs of the Kubernetes ConfigMap) decodes with no unknown key and
// validates, and every LIANDONG_ variable the systemd environment file names is
// a config key.
func TestOpsDeployConfigs(t *testing.T) {
	configs := map[string][]byte{}
	for _, f := range mustGlob(t, repoPath(t, "deploy/examples/*.yaml")) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		configs[filepath.Base(f)] = data
	}
	if len(configs) != 4 {
		t.Errorf("deploy/examples has %d configs, want one per centre", len(configs))
	}
	for _, doc := range k8sDocs(t) {
		if doc.Kind == "ConfigMap" && doc.Metadata.Name == "tianjin-config" {
			for k, v := range doc.Data {
				configs["kubernetes "+k] = []byte(v)
			}
		}
	}
	for name, data := range configs {
		cfg := server.Default()
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if cfg.DataDir != "/var/lib/liandong" {
			t.Errorf("%s: data_dir %s, want /var/lib/liandong (the unit's StateDirectory, the image's volume)", name, cfg.DataDir)
		}
	}

	keys := map[string]bool{}
	var walk func(reflect.Type, string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			name := prefix + "_" + strings.ToUpper(tag)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
				walk(f.Type, name)
				continue
			}
			keys[name] = true
		}
	}
	walk(reflect.TypeOf(server.Config{}), "LIANDONG")
	env, err := os.ReadFile(repoPath(t, "deploy/systemd/liandong.env"))
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`(?m)^#?(LIANDONG_[A-Z0-9_]+)=`).FindAllStringSubmatch(string(env), -1)
	if len(names) < 5 {
		t.Errorf("liandong.env names only %d variables", len(names))
	}
	for _, m := range names {
		if !keys[m[1]] {
			t.Errorf("liandong.env: %s is not a config key (known: %v)", m[1], slices.Sorted(mapKeys(keys)))
		}
	}
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestOpsSystemdUnit: the unit runs as its own user with the filesystem read-only
// but for the data directory, restarts on failure, and — where systemd-analyze
// is installed — verifies and rates as well hardened.
func TestOpsSystemdUnit(t *testing.T) {
	path := repoPath(t, "deploy/systemd/liandong.service")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	for _, want := range []string{"User=liandong", "Group=liandong", "ProtectSystem=strict", "ReadWritePaths=/var/lib/liandong",
		"StateDirectory=liandong", "Restart=on-failure", "NoNewPrivileges=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n",
		"EnvironmentFile=-/etc/liandong/liandong.env", "ExecStart=/usr/local/bin/liandong serve --config /etc/liandong/liandong.yaml"} {
		if !strings.Contains(unit, want) {
			t.Errorf("liandong.service lacks %q", strings.TrimSpace(want))
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit not verified")
		return
	}
	// Verify a copy whose ExecStart is the binary under test (verify wants it to exist).
	dir := t.TempDir()
	copyPath := filepath.Join(dir, "liandong.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(unit, "/usr/local/bin/liandong", binary)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runTool(t, time.Minute, dir, nil, analyze, "verify", copyPath); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := runTool(t, time.Minute, dir, nil, analyze, "security", "--offline=yes", copyPath)
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Logf("systemd-analyze security --offline not available: %v", err)
		return
	}
	if level, _ := strconv.ParseFloat(m[1], 64); level > 2.0 {
		t.Errorf("systemd-analyze security rates the unit %s (want ≤ 2.0, OK):\n%s", m[1], out)
	}
}

type k8sDoc struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec yaml.Node         `yaml:"spec"`
	file string
}

func k8sDocs(t *testing.T) []k8sDoc {
	t.Helper()
	var docs []k8sDoc
	for _, f := range mustGlob(t, repoPath(t, "deploy/kubernetes/*.yaml")) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var d k8sDoc
			err := dec.Decode(&d)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			d.file = filepath.Base(f)
			docs = append(docs, d)
		}
	}
	return docs
}

// TestOpsKubernetes checks the manifests against each other: a StatefulSet of
// three replicas with its headless Service, probes on /healthz and /readyz, a
// non-root read-only container, volumes from the ConfigMaps and the Secret the
// directory defines, a per-pod config for each replica, and a
// PodDisruptionBudget that keeps a raft majority.
func TestOpsKubernetes(t *testing.T) {
	docs := k8sDocs(t)
	byKind := map[string][]k8sDoc{}
	for _, d := range docs {
		if d.Kind == "Kustomization" {
			continue
		}
		byKind[d.Kind] = append(byKind[d.Kind], d)
		if d.Kind != "Namespace" && d.Metadata.Namespace != "liandong" {
			t.Errorf("%s %s (%s): namespace %q", d.Kind, d.Metadata.Name, d.file, d.Metadata.Namespace)
		}
	}
	for _, kind := range []string{"StatefulSet", "Service", "PodDisruptionBudget", "ConfigMap", "Secret", "Namespace"} {
		if len(byKind[kind]) == 0 {
			t.Errorf("no %s in deploy/kubernetes", kind)
		}
	}
	if len(byKind["StatefulSet"]) != 1 {
		t.Fatalf("want one StatefulSet, have %d", len(byKind["StatefulSet"]))
	}
	var sts struct {
		ServiceName         string `yaml:"serviceName"`
		Replicas            int    `yaml:"replicas"`
		PodManagementPolicy string `yaml:"podManagementPolicy"`
		Selector            struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []struct {
					Name            string   `yaml:"name"`
					Args            []string `yaml:"args"`
					ReadinessProbe  *probe   `yaml:"readinessProbe"`
					LivenessProbe   *probe   `yaml:"livenessProbe"`
					StartupProbe    *probe   `yaml:"startupProbe"`
					SecurityContext struct {
						ReadOnlyRootFilesystem   bool `yaml:"readOnlyRootFilesystem"`
						AllowPrivilegeEscalation bool `yaml:"allowPrivilegeEscalation"`
					} `yaml:"securityContext"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
					} `yaml:"secret"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
	}
	if err := byKind["StatefulSet"][0].Spec.Decode(&sts); err != nil {
		t.Fatal(err)
	}
	if sts.Replicas != 3 || sts.PodManagementPolicy != "Parallel" {
		t.Errorf("StatefulSet: replicas %d, podManagementPolicy %q; want 3, Parallel", sts.Replicas, sts.PodManagementPolicy)
	}
	if !sts.Template.Spec.SecurityContext.RunAsNonRoot || sts.Template.Spec.SecurityContext.RunAsUser != 10001 {
		t.Errorf("pods must run as the image's user 10001, non-root: %+v", sts.Template.Spec.SecurityContext)
	}
	for k, v := range sts.Selector.MatchLabels {
		if sts.Template.Metadata.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod labels", k, v)
		}
	}
	if len(sts.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, have %d", len(sts.Template.Spec.Containers))
	}
	c := sts.Template.Spec.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe: %+v, want GET /readyz", c.ReadinessProbe)
	}
	for name, p := range map[string]*probe{"liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		if p == nil || p.HTTPGet.Path != "/healthz" {
			t.Errorf("%s probe: %+v, want GET /healthz", name, p)
		}
	}
	if !c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("container security context: %+v", c.SecurityContext)
	}
	if strings.Join(c.Args, " ") != "serve --config /etc/liandong/config/$(POD_NAME).yaml" {
		t.Errorf("container args %v", c.Args)
	}

	// Volumes come from objects the directory defines.
	defined := map[string]bool{}
	for _, d := range docs {
		defined[d.Kind+"/"+d.Metadata.Name] = true
	}
	volumes := map[string]bool{}
	for _, v := range sts.Template.Spec.Volumes {
		volumes[v.Name] = true
		switch {
		case v.ConfigMap != nil && !defined["ConfigMap/"+v.ConfigMap.Name]:
			t.Errorf("volume %s: no ConfigMap %s", v.Name, v.ConfigMap.Name)
		case v.Secret != nil && !defined["Secret/"+v.Secret.SecretName]:
			t.Errorf("volume %s: no Secret %s", v.Name, v.Secret.SecretName)
		}
	}
	for _, vc := range sts.VolumeClaimTemplates {
		volumes[vc.Metadata.Name] = true
	}
	for _, m := range c.VolumeMounts {
		if !volumes[m.Name] {
			t.Errorf("mount %s: no volume %s", m.MountPath, m.Name)
		}
	}

	// One config per pod; the first bootstraps, the others join it.
	for _, d := range byKind["ConfigMap"] {
		if d.Metadata.Name != "tianjin-config" {
			continue
		}
		for i := 0; i < sts.Replicas; i++ {
			cfg := server.Default()
			data, ok := d.Data["tianjin-"+strconv.Itoa(i)+".yaml"]
			if !ok {
				t.Errorf("tianjin-config has no config for pod tianjin-%d", i)
				continue
			}
			if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.Raft.ReplicaID != "tianjin-"+strconv.Itoa(i) || (i == 0) != (cfg.Raft.Join == "") || (i == 0) != cfg.Raft.Bootstrap {
				t.Errorf("pod tianjin-%d: replica %s, bootstrap %v, join %q", i, cfg.Raft.ReplicaID, cfg.Raft.Bootstrap, cfg.Raft.Join)
			}
			if !strings.HasPrefix(cfg.Raft.Addr, "tianjin-"+strconv.Itoa(i)+"."+sts.ServiceName+".") {
				t.Errorf("pod tianjin-%d: raft address %s is not its stable name under Service %s", i, cfg.Raft.Addr, sts.ServiceName)
			}
		}
	}

	// The headless Service the StatefulSet names, published before ready.
	var headless bool
	for _, d := range byKind["Service"] {
		var spec struct {
			ClusterIP                string `yaml:"clusterIP"`
			PublishNotReadyAddresses bool   `yaml:"publishNotReadyAddresses"`
		}
		if err := d.Spec.Decode(&spec); err != nil {
			t.Fatal(err)
		}
		if d.Metadata.Name == sts.ServiceName {
			headless = spec.ClusterIP == "None" && spec.PublishNotReadyAddresses
		}
	}
	if !headless {
		t.Errorf("Service %s must be headless (clusterIP: None) with publishNotReadyAddresses", sts.ServiceName)
	}

	var pdb struct {
		MaxUnavailable int `yaml:"maxUnavailable"`
		Selector       struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	}
	if err := byKind["PodDisruptionBudget"][0].Spec.Decode(&pdb); err != nil {
		t.Fatal(err)
	}
	if pdb.MaxUnavailable != 1 || !reflect.DeepEqual(pdb.Selector.MatchLabels, sts.Selector.MatchLabels) {
		t.Errorf("PodDisruptionBudget: %+v; want maxUnavailable 1 over the StatefulSet's pods", pdb)
	}

	// kustomization.yaml lists files that exist, and not the placeholder Secret.
	data, err := os.ReadFile(repoPath(t, "deploy/kubernetes/kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var kz struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(data, &kz); err != nil {
		t.Fatal(err)
	}
	for _, r := range kz.Resources {
		if _, err := os.Stat(repoPath(t, filepath.Join("deploy/kubernetes", r))); err != nil {
			t.Errorf("kustomization: %v", err)
		}
		if r == "secret.yaml" || r == "bundle-configmap.yaml" {
			t.Errorf("kustomization applies the placeholder %s over real keys", r)
		}
	}
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// TestOpsGrafana: the dashboard is valid JSON with a datasource variable and a
// centre variable, every panel queries through the variable, the sections the
// operators asked for are there, and the provisioning files point at the paths
// the compose overlay mounts.
func TestOpsGrafana(t *testing.T) {
	data, err := os.ReadFile(repoPath(t, "deploy/grafana/dashboards/liandong-federation.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string         `json:"uid"`
		Title      string         `json:"title"`
		Panels     []grafanaPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
				Type string `json:"type"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, v := range dash.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["centre"] != "query" || dash.UID == "" {
		t.Errorf("dashboard uid %q, variables %v", dash.UID, vars)
	}
	var rows []string
	ids := map[[2]int]string{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			rows = append(rows, p.Title)
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want the ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: grid position %+v", p.Title, p.GridPos)
		}
		if other, dup := ids[[2]int{p.GridPos.X, p.GridPos.Y}]; dup {
			t.Errorf("panels %q and %q at the same place", p.Title, other)
		}
		ids[[2]int{p.GridPos.X, p.GridPos.Y}] = p.Title
		for _, tg := range p.Targets {
			if strings.Contains(tg.Expr, "liandong_") && !strings.Contains(tg.Expr, `centre=~"$centre"`) {
				t.Errorf("panel %q ignores the centre variable: %s", p.Title, tg.Expr)
			}
		}
	}
	for _, want := range []string{"Federation overview", "Per-peer lag", "Replication delay", "Raft", "API"} {
		if !slices.Contains(rows, want) {
			t.Errorf("dashboard has no row %q (rows: %v)", want, rows)
		}
	}

	var ds struct {
		Datasources []struct {
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, "deploy/grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" {
		t.Errorf("data source provisioning: %+v", ds)
	}
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "deploy/grafana/provisioning/dashboards/liandong.yml", &prov)
	compose, err := os.ReadFile(repoPath(t, "deploy/compose/docker-compose.monitoring.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(prov.Providers) != 1 || !strings.Contains(string(compose), "../grafana/dashboards:"+prov.Providers[0].Options.Path+":ro") {
		t.Errorf("dashboard provider path %+v is not where docker-compose.monitoring.yml mounts deploy/grafana/dashboards", prov)
	}
}

func readYAML(t *testing.T, rel string, out any) {
	t.Helper()
	data, err := os.ReadFile(repoPath(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, out); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}
