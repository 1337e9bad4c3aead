#!/usr/bin/env bash
# Builds the local Kubernetes control plane used by `make run`, `mengi
# dev-cluster` and the cluster tests: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler (module ./go.mod) and kwok (module
# ./kwok/go.mod).
#
# The binaries go to a cache folder outside the repository whose name is a hash
# of this script and of both modules' go.mod and go.sum, so a change of a pinned
# version builds into a new folder and an unchanged pin never rebuilds:
#
#   ${MENGI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mengi}/devcluster/<key>/
#
# Usage:
#   build.sh               build what is missing, one line per binary
#   build.sh --print-dir   print the folder (nothing is built)
#   build.sh --force       rebuild every binary
#
# A cold build takes about 20 minutes on 2 cores; afterwards it is a no-op.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export GOWORK=off GOFLAGS=-mod=readonly

# modver FILE MODULE prints MODULE's version as required in go.mod FILE.
modver() {
	awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1"
}

key=$(cat "$here/build.sh" "$here/go.mod" "$here/go.sum" "$here/kwok/go.mod" "$here/kwok/go.sum" |
	sha256sum | cut -c1-16)
cache=${MENGI_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/mengi}
dir="$cache/devcluster/$key"

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

command -v go >/dev/null || {
	echo "build.sh: go is not on PATH" >&2
	exit 1
}

k8s=$(modver "$here/go.mod" k8s.io/kubernetes)
etcd=$(modver "$here/go.mod" go.etcd.io/etcd/server/v3)
kwok=$(modver "$here/kwok/go.mod" sigs.k8s.io/kwok)
kwokkube=$(modver "$here/kwok/go.mod" k8s.io/client-go)
for v in "$k8s" "$etcd" "$kwok" "$kwokkube"; do
	[[ -n $v ]] || {
		echo "build.sh: cannot read the pinned versions from go.mod" >&2
		exit 1
	}
done

# stamps VERSION prints -X flags that make a Kubernetes library report VERSION
# (Helm's .Capabilities.KubeVersion and `kubectl version` read these).
stamps() {
	local v=$1 minor
	minor=$(echo "${v#v}" | cut -d. -f2)
	local p out=""
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		out+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor"
		out+=" -X $p.gitTreeState=clean -X $p.buildDate=2026-01-01T00:00:00Z"
	done
	echo "$out"
}

# The same flags for every binary: the build cache is keyed on them.
cpflags="-s -w$(stamps "$k8s") -X go.etcd.io/etcd/api/v3/version.GitSHA=$etcd"
# kwok's libraries are k8s.io/client-go v0.X.Y, i.e. Kubernetes v1.X.Y.
kwokflags="-s -w$(stamps "v1.${kwokkube#v0.}")"

mkdir -p "$dir"
# One build per folder at a time (two `make` runs, or CI beside a developer).
exec 9>"$dir/.lock"
flock 9
echo "devcluster: binaries in $dir (kubernetes $k8s, etcd $etcd, kwok $kwok)"

built=0
# build NAME MODULEDIR LDFLAGS PACKAGE
build() {
	local name=$1 mod=$2 ld=$3 pkg=$4
	if [[ $force == 0 && -x "$dir/$name" ]]; then
		echo "  $name: up to date"
		return
	fi
	local start=$SECONDS
	printf '  %s: building %s ...\n' "$name" "$pkg"
	(cd "$mod" && go build -trimpath -ldflags "$ld" -o "$dir/.$name.tmp" "$pkg")
	mv -f "$dir/.$name.tmp" "$dir/$name"
	printf '  %s: built in %ds (%s MiB)\n' "$name" $((SECONDS - start)) \
		$(($(stat -c %s "$dir/$name") / 1048576))
	built=1
}

total=$SECONDS
build etcd "$here" "$cpflags" go.etcd.io/etcd/server/v3
build kube-apiserver "$here" "$cpflags" k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager "$here" "$cpflags" k8s.io/kubernetes/cmd/kube-controller-manager
build kube-scheduler "$here" "$cpflags" k8s.io/kubernetes/cmd/kube-scheduler
build kwok "$here/kwok" "$kwokflags" sigs.k8s.io/kwok/cmd/kwok

cat >"$dir/VERSIONS" <<EOF
kubernetes $k8s
etcd $etcd
kwok $kwok
EOF
if [[ $built == 1 ]]; then
	echo "devcluster: done in $((SECONDS - total))s"
fi
