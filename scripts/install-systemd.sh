#!/usr/bin/env bash
# install-systemd.sh: install mirror-replay's systemd units and a default configuration.
#
# Usage: install-systemd.sh [--prefix DIR] [--root DIR] [--vni N] [--dev IFACE] [--name vxlan0]
#                           [--node PATH] [--no-enable]
#   --prefix DIR  where mirror-replay is installed (dist/, scripts/, node_modules/);
#                 default: this checkout
#   --root DIR    install below DIR instead of / (packaging, tests); implies --no-enable
#   --vni N       the mirror session's VNI, written to vxlan-NAME.env (default 1)
#   --dev IFACE   the underlying ENI, written to vxlan-NAME.env (default: the default route's)
#   --name NAME   the VXLAN interface (default vxlan0)
#   --node PATH   the node binary (default: `command -v node`)
#   --no-enable   do not run systemctl daemon-reload/enable
#
# Units go to ROOT/etc/systemd/system; configuration to ROOT/etc/mirror-replay, where an
# existing file is never overwritten (the new default is written next to it as *.dist).
#
# Exit codes: 0 done, 2 usage, 3 bad value, 4 node or the prefix not found, 7 systemctl failed
set -euo pipefail

prog=${0##*/}
here=$(cd "$(dirname "$0")/.." && pwd)
prefix=$here root= vni=1 dev= name=vxlan0 node= enable=1

die() { local c=$1; shift; echo "$prog: $*" >&2; exit "$c"; }
need() { [[ $# -ge 2 && -n $2 ]] || die 2 "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --prefix) need "$@"; prefix=$2; shift 2 ;;
    --root) need "$@"; root=$2; enable=0; shift 2 ;;
    --vni) need "$@"; vni=$2; shift 2 ;;
    --dev) need "$@"; dev=$2; shift 2 ;;
    --name) need "$@"; name=$2; shift 2 ;;
    --node) need "$@"; node=$2; shift 2 ;;
    --no-enable) enable=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die 2 "unknown argument $1 (try --help)" ;;
  esac
done

[[ $vni =~ ^[0-9]{1,8}$ ]] && ((vni >= 1 && vni <= 16777215)) || die 3 "--vni must be 1-16777215, got $vni"
[[ $name =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || die 3 "--name must be an interface name (1-15 of A-Z a-z 0-9 _ . -), got $name"
[[ -z $dev || $dev =~ ^[A-Za-z0-9_.@-]{1,15}$ ]] || die 3 "--dev must be an interface name, got $dev"
[[ $prefix == /* ]] || die 3 "--prefix must be absolute, got $prefix"
[[ -f $here/deploy/systemd/mirror-replay.service ]] || die 4 "unit files not found under $here/deploy/systemd"
[[ -n $root || -f $prefix/dist/src/cli/main.js ]] || die 4 "$prefix/dist/src/cli/main.js not found: build (npm run build) or give --prefix"
node=${node:-$(command -v node || true)}
[[ -n $node && $node == /* ]] || die 4 "node not found: give --node /path/to/node"

units=$root/etc/systemd/system
conf=$root/etc/mirror-replay
install -d -m 0755 "$units" "$conf"

for u in mirror-replay.service mirror-replay-vxlan@.service; do
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@NODE@|$node|g" "$here/deploy/systemd/$u" >"$units/$u.tmp"
  chmod 0644 "$units/$u.tmp"
  mv "$units/$u.tmp" "$units/$u"
done

# put SRC DEST: install a default, keeping an operator's edited copy.
put() {
  if [[ -e $2 ]]; then
    install -m 0644 "$1" "$2.dist"
    echo "$prog: kept $2 (new default in $2.dist)"
  else
    install -m 0644 "$1" "$2"
  fi
}
put "$here/deploy/systemd/config.yaml" "$conf/config.yaml"
put "$here/deploy/systemd/mirror-replay.env" "$conf/mirror-replay.env"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
sed -e "s|^VNI=.*|VNI=$vni|" -e "s|^DEV=.*|DEV=$dev|" "$here/deploy/systemd/vxlan.env" >"$tmp"
put "$tmp" "$conf/vxlan-$name.env"

if ((enable)); then
  systemctl daemon-reload || die 7 "systemctl daemon-reload failed"
  systemctl enable "mirror-replay-vxlan@$name.service" mirror-replay.service || die 7 "systemctl enable failed"
  echo "$prog: installed; edit $conf/config.yaml (destination), then: systemctl start mirror-replay"
else
  echo "$prog: installed under ${root:-/}"
fi
