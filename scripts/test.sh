#!/usr/bin/env bash
# The project's test command (README "Test"): installs what the tests need if it is
# missing, then vet, staticcheck and the race-enabled test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

# The operations tests (integration/ops_*_test.go) need promtool and prometheus
# (Debian's prometheus package); under CI=true they fail without them. Installed
# here when missing and running as root, without starting the package's own
# service: the tests run their own Prometheus on a free loopback port.
if ! command -v promtool >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing prometheus (promtool) for the operations tests"
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  ok=1
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends prometheus; } >/tmp/liandong-apt.log 2>&1 || ok=""
  [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
  if [ -z "$ok" ]; then
    echo "apt-get install prometheus failed:"; tail -20 /tmp/liandong-apt.log; exit 1
  fi
  if [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

# The console test (integration/ui_test.go) drives Debian's chromium headless; under
# CI=true it fails without it. fonts-noto-cjk gives its screenshots Chinese glyphs.
# Installed here when missing and running as root.
browser_pkgs=""
command -v chromium >/dev/null 2>&1 || browser_pkgs="chromium"
if command -v dpkg >/dev/null 2>&1 && ! dpkg -s fonts-noto-cjk >/dev/null 2>&1; then
  browser_pkgs="${browser_pkgs:+$browser_pkgs }fonts-noto-cjk"
fi
if [ -n "$browser_pkgs" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing $browser_pkgs for the console test"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends $browser_pkgs; } >/tmp/liandong-apt-browser.log 2>&1; then
    echo "apt-get install $browser_pkgs failed:"; tail -20 /tmp/liandong-apt-browser.log; exit 1
  fi
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files -co --exclude-standard -- '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

echo "== go test -race"
go test -race -count=1 -timeout 50m ./...

echo "== go test -race -tags failpoints (crash points of the store, fault hooks of the chaos harness; RELIABILITY.md)"
go test -race -count=1 -timeout 10m -tags failpoints -run '^(TestCrashPoints|TestPurgeKilled|TestMoveOutlivesLeadershipChange|TestAddBackMovedAppliesItsPredecessorsLog|TestAddBackMovedBoundsItsWait|TestAwaitTermAppliedIsBounded|TestAwaitTermAppliedFloodSharesOneBarrier|TestRaftLogDiskFull|TestRaftIsolation|TestRaftOneWayCuts|TestCloseAcrossOneWayCut|TestRemovalRefused(WithoutQuorum|AcrossFreshOneWayCut)|TestFaultsFile.*|TestIsolationCutsForwarding)$' ./node/ ./node/server/
