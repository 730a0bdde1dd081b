#!/usr/bin/env bash
# Fetches the upstream CRD files pinned in crds-upstream.env (idempotent) into a cache directory
# outside the repo:
#   ${DRILL_CACHE_DIR:-$HOME/.cache/drill}/crds-<sha256 of crds-upstream.env, 12 chars>/<key>.yaml
# Each file comes out of its Go module's zip, fetched from the Go module proxy ($GOPROXY, else
# `go env GOPROXY`, else https://proxy.golang.org; a zip already in the Go module cache is used as is),
# and must match the pinned sha256, or nothing is cached and the script fails.
# Prints the cache directory as the last line of stdout; progress and errors go to stderr.
#   fetch-crds.sh --check   only tells: prints the directory and exits 0 when fetched, exits 1 otherwise.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
env_file="$here/crds-upstream.env"
# shellcheck source=crds-upstream.env
. "$env_file"

: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
hash="$(sha256sum "$env_file" | cut -c1-12)"
cache_root="${DRILL_CACHE_DIR:-$HOME/.cache/drill}"
dir="$cache_root/crds-$hash"

die() { echo "fetch-crds.sh: $*" >&2; exit 1; }
file_of() { local k="${1,,}"; echo "${k//_/-}.yaml"; }

# Complete = the marker is there and every file still has its pinned sha256.
complete() {
  [ -f "$dir/.complete" ] || return 1
  local key f want
  for key in $CRDS; do
    f="$dir/$(file_of "$key")"; want="${key}_SHA256"
    [ -f "$f" ] && [ "$(sha256sum "$f" | cut -d' ' -f1)" = "${!want}" ] || return 1
  done
}

if complete; then
  echo "$dir"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "fetch-crds.sh: not fetched yet: $dir" >&2
  exit 1
fi

# Module paths and versions on the proxy: an upper-case letter becomes "!" + its lower case.
escape() { sed -E 's/([A-Z])/!\L\1/g' <<<"$1"; }

proxies=()
gp="${GOPROXY:-}"
[ -n "$gp" ] || ! command -v go >/dev/null 2>&1 || gp="$(go env GOPROXY)"
IFS=',|' read -r -a parts <<<"${gp:-https://proxy.golang.org}"
for p in "${parts[@]}"; do
  case "$p" in http://* | https://* | file://*) proxies+=("${p%/}") ;; esac
done
[ "${#proxies[@]}" -gt 0 ] || die "no usable proxy in GOPROXY=${gp} (need an http(s):// or file:// entry)"
modcache=""
! command -v go >/dev/null 2>&1 || modcache="$(go env GOMODCACHE)"

mkdir -p "$cache_root"
exec 9>"$cache_root/.crds-$hash.lock"
flock 9   # another fetch of the same key may be running: wait for it
if complete; then
  echo "$dir"
  exit 0
fi

tmp="$(mktemp -d "$cache_root/.tmp-crds-$hash-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# fetch_zip MODULE VERSION OUT: the module zip from the Go module cache or the first proxy that has it.
fetch_zip() {
  local emod ever p cached
  emod="$(escape "$1")"; ever="$(escape "$2")"
  cached="${modcache:+$modcache/cache/download/$emod/@v/$ever.zip}"
  if [ -n "$cached" ] && [ -f "$cached" ]; then
    echo "fetch-crds.sh: $1@$2 from the Go module cache" >&2
    cp "$cached" "$3"
    return 0
  fi
  for p in "${proxies[@]}"; do
    echo "fetch-crds.sh: downloading $p/$emod/@v/$ever.zip" >&2
    if curl -fsSL --retry 3 --retry-delay 2 --connect-timeout 20 --max-time 900 -o "$3" "$p/$emod/@v/$ever.zip"; then
      return 0
    fi
  done
  return 1
}

for key in $CRDS; do
  m="${key}_MODULE"; v="${key}_VERSION"; p="${key}_PATH"; s="${key}_SHA256"
  mod="${!m:?$m unset}"; ver="${!v:?$v unset}"; path="${!p:?$p unset}"; want="${!s:?$s unset}"
  out="$tmp/$(file_of "$key")"
  fetch_zip "$mod" "$ver" "$tmp/module.zip" || die "could not download $mod@$ver from ${proxies[*]}"
  # A module zip holds every file under "<module>@<version>/".
  unzip -p "$tmp/module.zip" "$mod@$ver/$path" >"$out" 2>/dev/null || die "$mod@$ver has no $path (see: unzip -l)"
  rm -f "$tmp/module.zip"
  got="$(sha256sum "$out" | cut -d' ' -f1)"
  [ "$got" = "$want" ] || die "$mod@$ver $path: sha256 $got, pinned $want (crds-upstream.env)"
  printf '%s %s@%s %s\n' "$got" "$mod" "$ver" "$path" >>"$tmp/SOURCES"
  echo "fetch-crds.sh: $(basename "$out") <- $mod@$ver/$path (sha256 ok)" >&2
done

cp "$env_file" "$tmp/crds-upstream.env"
chmod 755 "$tmp"
touch "$tmp/.complete"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$dir"
