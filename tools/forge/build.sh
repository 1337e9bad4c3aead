#!/usr/bin/env bash
# Builds the Git forge used by the forge tests (package forge/forgetest): Gitea,
# pinned by ./go.mod, with SQLite compiled in, and the options/ folder
# (locales, licences, gitignores) it needs at runtime, copied out of the module
# cache. No web assets: the REST API and git over HTTP work without them.
#
# The result goes to a cache folder outside the repository whose name is a hash
# of this script and of ./go.mod and ./go.sum, so a change of the pinned version
# builds into a new folder and an unchanged pin never rebuilds:
#
#   ${MENGI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mengi}/forge/<key>/
#     gitea      the binary
#     options/   its STATIC_ROOT_PATH/options
#     VERSION    the Gitea version
#
# The folder is built under a temporary name and renamed when complete, so it
# either holds everything or does not exist.
#
# Usage:
#   build.sh               build the folder unless it exists
#   build.sh --print-dir   print the folder (nothing is built)
#   build.sh --force       rebuild it
#
# A cold build takes about 8 minutes on 2 cores (CGO: gcc must be installed);
# afterwards it is a no-op.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=1

key=$(cat "$here/build.sh" "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-16)
cache=${MENGI_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/mengi}
parent="$cache/forge"
dir="$parent/$key"

force=0
case "${1:-}" in
--print-dir)
	echo "$dir"
	exit 0
	;;
--force) force=1 ;;
"") ;;
*)
	echo "usage: $0 [--print-dir|--force]" >&2
	exit 2
	;;
esac

complete() { [[ -x "$1/gitea" && -d "$1/options/locale" ]]; }

if [[ $force == 0 ]] && complete "$dir"; then
	echo "forge: gitea in $dir: up to date"
	exit 0
fi

for tool in go gcc; do
	command -v "$tool" >/dev/null || {
		echo "build.sh: $tool is not on PATH" >&2
		exit 1
	}
done

version=$(awk '$1 == "code.gitea.io/gitea" && $2 ~ /^v/ { print $2; exit }' "$here/go.mod")
[[ -n $version ]] || {
	echo "build.sh: cannot read the pinned Gitea version from $here/go.mod" >&2
	exit 1
}

mkdir -p "$parent"
# One build per key at a time (two `make` runs, or CI beside a developer).
exec 9>"$parent/.$key.lock"
flock 9
if [[ $force == 0 ]] && complete "$dir"; then
	echo "forge: gitea in $dir: up to date (built meanwhile)"
	exit 0
fi

tmp=$(mktemp -d "$parent/.$key.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "forge: building gitea $version into $dir ..."
start=$SECONDS

cd "$here"
tags="sqlite sqlite_unlock_notify"
go build -trimpath -tags "$tags" \
	-ldflags "-s -w -X main.Version=${version#v} -X main.Tags=${tags// /,}" \
	-o "$tmp/gitea" code.gitea.io/gitea

# The module's folder in the module cache (go build has downloaded it).
src=$(go list -m -f '{{.Dir}}' code.gitea.io/gitea)
[[ -d "$src/options/locale" ]] || {
	echo "build.sh: no options/locale in $src" >&2
	exit 1
}
cp -R "$src/options" "$tmp/options"
chmod -R u+w "$tmp/options"
echo "gitea ${version#v}" >"$tmp/VERSION"
"$tmp/gitea" --version >/dev/null

chmod 755 "$tmp"
if [[ -e $dir ]]; then
	old=$(mktemp -d "$parent/.$key.old.XXXXXX")
	mv "$dir" "$old/"
	mv "$tmp" "$dir"
	rm -rf "$old"
else
	mv "$tmp" "$dir"
fi
trap - EXIT
printf 'forge: built in %ds (gitea %s MiB)\n' $((SECONDS - start)) \
	$(($(stat -c %s "$dir/gitea") / 1048576))
