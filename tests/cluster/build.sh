#!/usr/bin/env bash
# Builds the test control plane binaries (idempotent) into a cache directory outside the repo:
#   ${DRILL_CACHE_DIR:-$HOME/.cache/drill}/kube-<k8s>-kwok-<kwok>-<hash>/bin/{kubecluster,kwok}
# The hash covers go.mod, go.sum, main.go, versions.env and this script, so a change to any
# of them gives a new directory; an existing complete directory is reused as is.
# Prints the bin directory as the last line of stdout.
#   build.sh --check   only tells: prints the bin directory and exits 0 when built, exits 1 otherwise.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$here/versions.env"

command -v go >/dev/null 2>&1 || { [ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"; }
command -v go >/dev/null 2>&1 || { echo "build.sh: go not found (need Go >= 1.26)" >&2; exit 1; }

: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
export HOME
hash="$(cd "$here" && cat go.mod go.sum main.go versions.env build.sh | sha256sum | cut -c1-12)"
cache_root="${DRILL_CACHE_DIR:-$HOME/.cache/drill}"
dir="$cache_root/kube-$K8S_VERSION-kwok-$KWOK_VERSION-$hash"
bin="$dir/bin"

complete() { [ -f "$dir/.complete" ] && [ -x "$bin/kubecluster" ] && [ -x "$bin/kwok" ]; }

if complete; then
  echo "$bin"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "build.sh: not built yet: $bin" >&2
  exit 1
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.build-$hash.lock"
flock 9   # another build of the same key may be running: wait for it
if complete; then
  echo "$bin"
  exit 0
fi

tmp="$(mktemp -d "$cache_root/.tmp-$hash-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"
start=$(date +%s)
echo "build.sh: building kubecluster (k8s.io/kubernetes $K8S_VERSION) into $dir; a cold build takes a long while" >&2
# -mod=readonly: never touch go.mod/go.sum in the repo; -o outside the repo.
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
vpkg=k8s.io/component-base/version
ldflags="-s -w -X $vpkg.gitVersion=$K8S_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
(cd "$here" && go build -mod=readonly -trimpath -ldflags="$ldflags" -o "$tmp/bin/kubecluster" .) >&2
mid=$(date +%s)
echo "build.sh: building kwok $KWOK_VERSION" >&2
(cd "$tmp" && GOBIN="$tmp/bin" go install -trimpath -ldflags='-s -w' "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION") >&2
end=$(date +%s)
for c in etcd kube-apiserver kube-controller-manager kube-scheduler; do ln -s kubecluster "$tmp/bin/$c"; done
{
  echo "k8s=$K8S_VERSION kwok=$KWOK_VERSION hash=$hash"
  echo "go=$(go version)"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "kubecluster_build_seconds=$((mid - start))"
  echo "kwok_build_seconds=$((end - mid))"
  echo "sizes: $(cd "$tmp/bin" && du -h kubecluster kwok | awk '{printf "%s=%s ", $2, $1}')"
} > "$tmp/build-info.txt"
sed 's/^/build.sh: /' "$tmp/build-info.txt" >&2
chmod 755 "$tmp"
touch "$tmp/.complete"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$bin"
