#!/usr/bin/env bash
# Builds the liandong container image from the static binary alone (FROM scratch):
# no base image is pulled, so it works without any registry.
#
#   deploy/docker/build.sh [IMAGE]        default IMAGE: liandong:latest
#
# CA_BUNDLE names the CA certificates to copy in (default: the host's
# /etc/ssl/certs/ca-certificates.crt, Debian's ca-certificates package).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
image=${1:-liandong:latest}
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
if [ ! -r "$ca" ]; then
  echo "build.sh: no CA bundle at $ca; install ca-certificates or set CA_BUNDLE=FILE" >&2
  exit 1
fi
command -v docker >/dev/null || { echo "build.sh: docker is not installed" >&2; exit 1; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
(cd "$repo" && CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags='-s -w' -o "$ctx/liandong" ./cmd/liandong)
cp "$ca" "$ctx/ca-certificates.crt"
cp "$here/Dockerfile" "$here/passwd" "$here/group" "$ctx/"
mkdir "$ctx/data"
docker build --quiet --tag "$image" "$ctx" >/dev/null
echo "built $image"
