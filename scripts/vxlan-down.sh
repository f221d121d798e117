#!/usr/bin/env bash
# vxlan-down.sh: delete the VXLAN interface made by vxlan-up.sh. Safe to run twice.
#
# Usage: vxlan-down.sh [--name vxlan0]
#   --name NAME   the interface to delete (default: vxlan0)
#   -h, --help    print this and exit 0
#
# Runs the same inside `ip netns exec NS`. Deletes only an interface of kind vxlan.
#
# Exit codes (shared with vxlan-up.sh):
#   0  deleted, or it did not exist
#   2  usage: unknown flag, flag without a value
#   6  the interface exists but is not a vxlan; left alone
#   7  an ip command failed for another reason
#   8  not permitted (needs root or CAP_NET_ADMIN)
#  10  bad interface name (1-15 chars; no '/', ':', whitespace; not '.' or '..')
#  11  ip (iproute2) not found
set -euo pipefail

readonly EX_USAGE=2 EX_CONFLICT=6 EX_IP=7 EX_PERM=8 EX_NAME=10 EX_NOIP=11

prog=${0##*/}
# shellcheck source=vxlan-lib.sh
source "$(dirname "$(readlink -f "$0")")/vxlan-lib.sh"

usage() {
  echo "usage: $prog [--name vxlan0]"
}

name=vxlan0
while (($# > 0)); do
  case $1 in
    --name)
      (($# >= 2)) || { usage >&2; die $EX_USAGE "--name needs a value"; }
      name=$2
      shift 2
      ;;
    --name=*) name=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die $EX_USAGE "unknown argument: $1" ;;
  esac
done

valid_ifname "$name" ||
  die $EX_NAME "bad interface name '$name': 1-15 characters, no '/', ':' or whitespace"
command -v ip >/dev/null 2>&1 || die $EX_NOIP "ip not found: install iproute2"

if ! ip link show dev "$name" >/dev/null 2>&1; then
  echo "$name does not exist; nothing to do"
  exit 0
fi
details=$(ip -d -o link show dev "$name")
if [[ $details != *" vxlan id "* ]]; then
  kind=$(ip -d -j link show dev "$name" 2>/dev/null |
    grep -o '"info_kind":"[^"]*"' | head -n 1 | sed 's/.*:"\(.*\)"/\1/' || true)
  die $EX_CONFLICT "$name exists but is not a vxlan (kind: ${kind:-none}); not deleting it"
fi
vni=$(sed -n 's/.* vxlan id \([0-9]*\).*/\1/p' <<<"$details")
run_ip link del dev "$name"
echo "deleted $name (vxlan id ${vni:-?})"
