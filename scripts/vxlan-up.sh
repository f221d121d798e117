#!/usr/bin/env bash
# vxlan-up.sh: create (or confirm) the VXLAN interface that decapsulates AWS VPC
# Traffic Mirroring on the adapter, so that production's Ethernet frames appear on it.
#
# Usage: vxlan-up.sh --vni N [--dev IFACE] [--name vxlan0] [--port 4789] [--no-gro]
#   --vni N       the mirror session's VXLAN network identifier, 1-16777215 (required)
#   --dev IFACE   the underlying interface the mirrored UDP arrives on
#                 (default: the interface of the default route)
#   --name NAME   the interface to create (default: vxlan0)
#   --port P      the UDP destination port (default: 4789, the one AWS uses)
#   --no-gro      stop GRO on NAME from merging mirrored TCP segments into frames of up
#                 to 64 KiB (sets gro_max_size 0; no ethtool needed). Without it the
#                 capture must take frames of up to 64 KiB. On AWS the underlying NIC's GRO
#                 can merge VXLAN too: that is `ethtool -K DEV gro off` on DEV, not done here.
#   -h, --help    print this and exit 0
#
# Runs the same inside `ip netns exec NS`. Idempotent: an existing interface with the
# same VNI, dev and port is brought up and left alone.
#
# Exit codes (shared with vxlan-down.sh):
#   0  created, or already there with the same settings
#   2  usage: unknown flag, flag without a value, --vni missing
#   3  bad VNI (not an integer in 1-16777215)
#   4  bad port (not an integer in 1-65535)
#   5  the --dev interface does not exist
#   6  an interface with that name exists with other settings, or is not a vxlan
#   7  an ip command failed for another reason
#   8  not permitted (needs root or CAP_NET_ADMIN)
#   9  no --dev and no default route to take it from
#  10  bad interface name (1-15 chars; no '/', ':', whitespace; not '.' or '..')
#  11  ip (iproute2) not found
set -euo pipefail

readonly EX_USAGE=2 EX_VNI=3 EX_PORT=4 EX_NODEV=5 EX_CONFLICT=6 EX_IP=7 EX_PERM=8 \
  EX_NOROUTE=9 EX_NAME=10 EX_NOIP=11
readonly VXLAN_OVERHEAD=50 # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14

prog=${0##*/}
# shellcheck source=vxlan-lib.sh
source "$(dirname "$(readlink -f "$0")")/vxlan-lib.sh"

usage() {
  echo "usage: $prog --vni N [--dev IFACE] [--name vxlan0] [--port 4789] [--no-gro]"
}

# is_uint VALUE MAXDIGITS: decimal digits only, at most MAXDIGITS of them.
is_uint() {
  [[ $1 =~ ^[0-9]+$ ]] && ((${#1} <= $2))
}

# Same rule as the kernel's dev_valid_name().

link_exists() {
  ip link show dev "$1" >/dev/null 2>&1
}

default_route_dev() {
  ip route show default 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p' | head -n 1
}

vni="" dev="" name=vxlan0 port=4789 no_gro=0
need_value() { # need_value FLAG REMAINING_ARGC
  (($2 >= 2)) || { usage >&2; die $EX_USAGE "$1 needs a value"; }
}
while (($# > 0)); do
  case $1 in
    --vni) need_value "$1" $#; vni=$2; shift 2 ;;
    --dev) need_value "$1" $#; dev=$2; shift 2 ;;
    --name) need_value "$1" $#; name=$2; shift 2 ;;
    --port) need_value "$1" $#; port=$2; shift 2 ;;
    --vni=*) vni=${1#*=}; shift ;;
    --dev=*) dev=${1#*=}; shift ;;
    --name=*) name=${1#*=}; shift ;;
    --port=*) port=${1#*=}; shift ;;
    --no-gro) no_gro=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die $EX_USAGE "unknown argument: $1" ;;
  esac
done

[[ -n $vni ]] || { usage >&2; die $EX_USAGE "--vni is required"; }
if ! is_uint "$vni" 8 || ((10#$vni < 1 || 10#$vni > 16777215)); then
  die $EX_VNI "bad VNI '$vni': must be an integer from 1 to 16777215"
fi
vni=$((10#$vni))
if ! is_uint "$port" 5 || ((10#$port < 1 || 10#$port > 65535)); then
  die $EX_PORT "bad port '$port': must be an integer from 1 to 65535"
fi
port=$((10#$port))
valid_ifname "$name" ||
  die $EX_NAME "bad interface name '$name': 1-15 characters, no '/', ':' or whitespace"

command -v ip >/dev/null 2>&1 || die $EX_NOIP "ip not found: install iproute2"

if [[ -z $dev ]]; then
  dev=$(default_route_dev)
  [[ -n $dev ]] || die $EX_NOROUTE "no default route to take the device from; pass --dev IFACE"
else
  valid_ifname "$dev" ||
    die $EX_NAME "bad device name '$dev': 1-15 characters, no '/', ':' or whitespace"
fi
link_exists "$dev" || die $EX_NODEV "device '$dev' does not exist"
[[ $dev != "$name" ]] || die $EX_USAGE "--dev and --name are both '$dev'"

dev_mtu=$(cat "/sys/class/net/$dev/mtu" 2>/dev/null || echo "?")

print_mtu() {
  local mtu
  mtu=$(cat "/sys/class/net/$name/mtu" 2>/dev/null || echo "?")
  echo "$name: mtu $mtu; $dev: mtu $dev_mtu"
  if [[ $dev_mtu =~ ^[0-9]+$ ]]; then
    local inner=$((dev_mtu - VXLAN_OVERHEAD))
    echo "mirrored packets up to $inner bytes (IP) arrive whole; AWS truncates larger ones."
    if ((dev_mtu < 9001)); then
      echo "hint: $dev has mtu $dev_mtu; production's jumbo frames (9001) need an adapter with mtu 9001 on $dev."
    fi
  fi
}

# gro_max_size 0 makes every GRO merge on NAME fail its size check. Best effort: an older
# kernel or iproute2 without the attribute gets a warning, not a failure.
apply_gro() {
  ((no_gro == 1)) || return 0
  local err
  if err=$(ip link set dev "$name" gro_max_size 0 2>&1); then
    echo "$name: GRO off (gro_max_size 0): one frame per mirrored packet"
  else
    echo "$prog: warning: could not turn GRO off on $name, frames may be merged up to 64 KiB: $err" >&2
  fi
}

if link_exists "$name"; then
  details=$(ip -d -o link show dev "$name")
  if [[ $details != *" vxlan id "* ]]; then
    kind=$(ip -d -j link show dev "$name" 2>/dev/null |
      grep -o '"info_kind":"[^"]*"' | head -n 1 | sed 's/.*:"\(.*\)"/\1/' || true)
    die $EX_CONFLICT "$name exists and is not a vxlan (kind: ${kind:-none}); pick another --name or remove it"
  fi
  have_vni=$(sed -n 's/.* vxlan id \([0-9]*\).*/\1/p' <<<"$details")
  have_dev=$(sed -n 's/.* vxlan id .* dev \([^ ]*\) .*/\1/p' <<<"$details")
  have_port=$(sed -n 's/.* dstport \([0-9]*\).*/\1/p' <<<"$details")
  diffs=()
  [[ $have_vni == "$vni" ]] || diffs+=("vni ${have_vni:-?}, wanted $vni")
  [[ $have_dev == "$dev" ]] || diffs+=("dev ${have_dev:-none}, wanted $dev")
  [[ $have_port == "$port" ]] || diffs+=("port ${have_port:-?}, wanted $port")
  if ((${#diffs[@]} > 0)); then
    msg="$name exists with ${diffs[0]}"
    for d in "${diffs[@]:1}"; do msg+="; $d"; done
    die $EX_CONFLICT "$msg (run vxlan-down.sh --name $name first to replace it)"
  fi
  echo "$name already exists with vni $vni dev $dev port $port; nothing to do"
  run_ip link set dev "$name" up
  apply_gro
  print_mtu
  exit 0
fi

run_ip link add "$name" type vxlan id "$vni" dev "$dev" dstport "$port"
run_ip link set dev "$name" up
echo "created $name: vxlan id $vni dev $dev dstport $port, up"
apply_gro
print_mtu
