// Command provision prepares the data directories of the four-centre federation
// that deploy/compose/docker-compose.yml runs: each centre's keys, one trust
// bundle listing all four with their libp2p and HTTP addresses by compose service
// name (/dns4/tianjin/tcp/8712, http://tianjin:8702), an admin token per centre,
// and the federation root key that signs the bundle, kept outside every
// container's mount.
//
//	go run ./deploy/compose/provision -data deploy/compose/data
//
// Existing keys are kept, so running it again is safe; the bundle and tokens are
// written again only with -force (a new bundle then starts from version 1: only
// for a federation that is not running yet). Run as root, it gives the centres'
// directories to the image's user (-owner, default 10001:10001); otherwise chown
// them yourself. It writes DATA/compose.env with LIANDONG_ROOT_KEYS for
// `docker-compose --env-file`.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"liandong/auth"
	"liandong/node/server"
)

// centres are the federation's four centres with the ports of deploy/examples.
var centres = []struct {
	id, name, nameZH string
	http, p2p        int
}{
	{"hq", "Headquarters", "京津冀国家技术创新中心本部", 8701, 8711},
	{"tianjin", "Tianjin Centre", "天津中心", 8702, 8712},
	{"hebei", "Hebei Centre", "河北中心", 8703, 8713},
	{"xiongan", "Xiong'an Centre", "雄安中心", 8704, 8714},
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "provision:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	flags := flag.NewFlagSet("provision", flag.ContinueOnError)
	data := flags.String("data", "data", "directory for the centres' data directories (bind-mounted into the containers)")
	federation := flags.String("federation", "jjj-compose", "federation id")
	ttl := flags.Duration("ttl", 365*24*time.Hour, "trust bundle lifetime")
	tokenTTL := flags.Duration("token-ttl", 30*24*time.Hour, "admin token lifetime")
	owner := flags.String("owner", "10001:10001", "uid:gid to give the centres' directories when run as root (empty: leave them)")
	force := flags.Bool("force", false, "write the bundle and tokens again even if they exist")
	if err := flags.Parse(args); err != nil {
		return err
	}
	now := time.Now().UTC()
	root, err := loadOrCreateKey(filepath.Join(*data, "root", "root.key"), "root")
	if err != nil {
		return fmt.Errorf("federation root key: %w", err)
	}
	var members []auth.Member
	cfgs := make([]server.Config, len(centres))
	for i, c := range centres {
		cfg := server.Default()
		cfg.Centre, cfg.DataDir = c.id, filepath.Join(*data, c.id)
		if err := cfg.Validate(); err != nil {
			return err
		}
		keys, err := server.EnsureKeys(&cfg)
		if err != nil {
			return fmt.Errorf("keys of %s: %w", c.id, err)
		}
		p2p := []string{fmt.Sprintf("/dns4/%s/tcp/%d", c.id, c.p2p), fmt.Sprintf("/dns4/%s/udp/%d/quic-v1", c.id, c.p2p)}
		http := []string{fmt.Sprintf("http://%s:%d", c.id, c.http)}
		members = append(members, server.MemberFor(c.id, c.name, c.nameZH, keys, p2p, http, now.Add(-time.Hour)))
		cfgs[i] = cfg
	}
	bundle := &auth.Bundle{
		Federation: *federation, Version: 1, IssuedAt: now, ExpiresAt: now.Add(*ttl),
		Signers:   []auth.Key{{ID: root.ID, Public: root.Public, NotBefore: now.Add(-time.Hour)}},
		Threshold: 1, Members: members,
	}
	for i, cfg := range cfgs {
		bundlePath := cfg.Path(cfg.Bundle)
		if _, err := os.Stat(bundlePath); *force || errors.Is(err, fs.ErrNotExist) {
			if _, err := server.SignNewBundle(bundlePath, bundle, root); err != nil {
				return fmt.Errorf("bundle of %s: %w", cfg.Centre, err)
			}
		}
		tokenPath := cfg.Path("admin.token")
		if _, err := os.Stat(tokenPath); *force || errors.Is(err, fs.ErrNotExist) {
			keys, err := server.EnsureKeys(&cfgs[i])
			if err != nil {
				return err
			}
			iss := auth.TokenIssuer{Centre: cfg.Centre, Federation: bundle.Federation, Key: keys.Token}
			tok, err := iss.Issue("compose-admin", auth.AllScopes, *tokenTTL, now)
			if err != nil {
				return err
			}
			if err := server.WriteToken(tokenPath, tok); err != nil {
				return err
			}
		}
	}
	env := filepath.Join(*data, "compose.env")
	if err := os.WriteFile(env, []byte("LIANDONG_ROOT_KEYS="+auth.KeyFingerprint(root.Public)+"\n"), 0o644); err != nil {
		return err
	}
	if *owner != "" {
		if err := chownCentres(*data, *owner); err != nil {
			return err
		}
	}
	fmt.Printf("federation %s: four centres under %s, bundle signed by root key %s (%s)\n", *federation, *data, root.ID,
		filepath.Join(*data, "root", "root.key"))
	fmt.Printf("admin tokens: %s/<centre>/admin.token; root key pin for the nodes: %s\n", *data, env)
	return nil
}

func loadOrCreateKey(path, prefix string) (*auth.KeyPair, error) {
	k, err := auth.LoadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if k, err = auth.GenerateKey(prefix); err != nil {
		return nil, err
	}
	return k, auth.SaveKey(path, k)
}

// chownCentres gives each centre's directory to uid:gid, when running as root.
func chownCentres(data, owner string) error {
	u, g, ok := strings.Cut(owner, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("-owner %q: want uid:gid, e.g. 10001:10001", owner)
	}
	if os.Geteuid() != 0 {
		fmt.Printf("not root: run `sudo chown -R %s %s/{hq,tianjin,hebei,xiongan}` so the containers' user can write there\n", owner, data)
		return nil
	}
	for _, c := range centres {
		err := filepath.WalkDir(filepath.Join(data, c.id), func(path string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(path, uid, gid)
		})
		if err != nil {
			return fmt.Errorf("give %s to %s: %w", c.id, owner, err)
		}
	}
	return nil
}
