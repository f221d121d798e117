#!/usr/bin/env bash
# lab-net.sh: an AWS VPC Traffic Mirroring look-alike made of four network namespaces.
#
# Usage: lab-net.sh up PREFIX [--quiet]
#        lab-net.sh down PREFIX
#   PREFIX must start with "mr" (e.g. mr-lab, mr-e2e-1234); letters, digits, '.', '_', '-';
#   at most 32 characters. The namespaces are PREFIX-client, -prod, -adapter, -test.
#   --quiet   print nothing on success (errors still go to stderr)
#
#   PREFIX-client  eth0 10.213.1.1/24 fd00:213:1::1/64
#        |  veth, mtu 1500
#   PREFIX-prod    eth0 10.213.1.2/24 fd00:213:1::2/64   production's NIC: tc (clsact, u32
#                  match-all, mirred mirror) copies its ingress and egress frames to mirror0
#                  mirror0  vxlan id 1 remote 10.213.2.2 dstport 4789 dev eth1, mtu 8951
#                  eth1 10.213.2.1/24 mtu 9001
#        |  veth, mtu 9001 (the mirror link)
#   PREFIX-adapter eth0 10.213.2.2/24 mtu 9001, default route via 10.213.2.1
#                  (no vxlan0 here: run `ip netns exec PREFIX-adapter scripts/vxlan-up.sh --vni 1`)
#                  eth1 10.213.3.1/24
#        |  veth, mtu 1500
#   PREFIX-test    eth0 10.213.3.2/24   the test environment's web server listens here
#
# No forwarding between namespaces; the client reaches only prod, the adapter only
# prod's eth1 (for VXLAN) and the test namespace.
#
# Offloads: client's and prod's eth0 get `gso_max_segs 1`, so TCP builds one-MSS frames
# (at most 1514 bytes) as a real wire would carry them; with the veth default the tc hooks
# see TSO/GSO super-frames of up to 64 KiB and mirror them whole (they still arrive, as
# GSO through the VXLAN, but not as the frames AWS would copy). No ethtool is needed.
# Note that the adapter's vxlan0 does GRO by default and merges in-order mirrored TCP
# segments again; `vxlan-up.sh --no-gro` turns that off. Its rx counters count frames
# before GRO, and its rx_bytes leave out the 14-byte inner Ethernet header.
#
# `up` refuses when any of the four namespaces exists; `down` deletes whichever of them
# exist and is always safe to run. Neither starts or kills processes.
#
# Exit codes:
#   0  done
#   2  usage: unknown command or flag, PREFIX missing
#   3  bad PREFIX (must start with "mr"; [A-Za-z0-9._-]; at most 32 characters)
#   4  up: a namespace of this PREFIX already exists; run `lab-net.sh down PREFIX` first
#   7  an ip or tc step failed (up then deletes what it had made), or down could not
#      delete a namespace
#   8  not permitted (needs root)
#  11  ip or tc (iproute2) not found
set -euo pipefail

readonly EX_USAGE=2 EX_PREFIX=3 EX_EXISTS=4 EX_STEP=7 EX_PERM=8 EX_NOTOOL=11
readonly ROLES=(client prod adapter test)
readonly MIRROR_LINK_MTU=9001 MIRROR_VNI=1 MIRROR_PORT=4789
readonly MIRROR_DEV_MTU=$((MIRROR_LINK_MTU - 50)) # outer IPv4 20 + UDP 8 + VXLAN 8 + Ethernet 14

prog=${0##*/}

usage() {
  echo "usage: $prog up PREFIX [--quiet] | $prog down PREFIX"
}

die() { # die CODE MESSAGE...
  local code=$1
  shift
  echo "$prog: $*" >&2
  exit "$code"
}

# step CMD...: run one setup command; on failure say which, and exit with EX_PERM or EX_STEP.
step() {
  local err
  if ! err=$("$@" 2>&1 >/dev/null); then
    if [[ $err == *"Operation not permitted"* || $err == *"Permission denied"* ]]; then
      die $EX_PERM "$*: not permitted (run as root): $err"
    fi
    die $EX_STEP "$* failed: $err"
  fi
}

ns_exists() { # ip netns keeps one file per named namespace here
  [[ -e /run/netns/$1 || -e /var/run/netns/$1 ]]
}

lab_down() { # lab_down PREFIX: delete every namespace of the lab that exists
  local role ns err failed=0
  for role in "${ROLES[@]}"; do
    ns=$1-$role
    if ns_exists "$ns" && ! err=$(ip netns del "$ns" 2>&1); then
      echo "$prog: could not delete namespace $ns: $err" >&2
      failed=1
    fi
  done
  return $failed
}

lab_up() { # lab_up PREFIX QUIET
  local p=$1 quiet=$2 role
  local client=$p-client prod=$p-prod adapter=$p-adapter tst=$p-test
  for role in "${ROLES[@]}"; do
    if ns_exists "$p-$role"; then
      die $EX_EXISTS "namespace $p-$role already exists; run '$prog down $p' first"
    fi
  done
  # From here on, a failed step removes the half-built lab (none of it existed before).
  trap 'rc=$?; if ((rc != 0)); then lab_down "$p" || true; fi' EXIT

  for role in "${ROLES[@]}"; do
    step ip netns add "$p-$role"
    step ip -n "$p-$role" link set lo up
  done

  # client <-> prod: production's NIC is prod's eth0.
  step ip link add eth0 netns "$client" type veth peer name eth0 netns "$prod"
  step ip -n "$client" addr add 10.213.1.1/24 dev eth0
  step ip -n "$client" addr add fd00:213:1::1/64 dev eth0 nodad
  step ip -n "$prod" addr add 10.213.1.2/24 dev eth0
  step ip -n "$prod" addr add fd00:213:1::2/64 dev eth0 nodad
  # A veth hands TSO/GSO super-frames (up to 64 KiB) across untouched, and tc on eth0 would
  # mirror them as such. AWS mirrors what is on the wire, so make both ends of production's
  # link build one-MSS frames: gso_max_segs 1 does that without ethtool.
  step ip -n "$client" link set dev eth0 gso_max_segs 1
  step ip -n "$prod" link set dev eth0 gso_max_segs 1

  # prod <-> adapter: the mirror link, jumbo like an AWS adapter instance.
  step ip link add eth1 netns "$prod" mtu "$MIRROR_LINK_MTU" type veth \
    peer name eth0 netns "$adapter" mtu "$MIRROR_LINK_MTU"
  step ip -n "$prod" addr add 10.213.2.1/24 dev eth1
  step ip -n "$adapter" addr add 10.213.2.2/24 dev eth0

  # adapter <-> test: where replayed requests go.
  step ip link add eth1 netns "$adapter" type veth peer name eth0 netns "$tst"
  step ip -n "$adapter" addr add 10.213.3.1/24 dev eth1
  step ip -n "$tst" addr add 10.213.3.2/24 dev eth0

  for role in "${ROLES[@]}"; do
    step ip -n "$p-$role" link set eth0 up
  done
  step ip -n "$prod" link set eth1 up
  step ip -n "$adapter" link set eth1 up
  step ip -n "$adapter" route add default via 10.213.2.1 dev eth0

  # The mirror session: VNI 1 from prod's eth1 to the adapter. mirror0 carries only
  # mirrored frames, so it gets no IPv6 of its own (no link-local, RS, or MLD of its own
  # would appear in the feed).
  step ip -n "$prod" link add mirror0 type vxlan id "$MIRROR_VNI" remote 10.213.2.2 \
    dstport "$MIRROR_PORT" dev eth1
  step ip -n "$prod" link set mirror0 mtu "$MIRROR_DEV_MTU"
  step ip netns exec "$prod" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/mirror0/disable_ipv6'
  step ip -n "$prod" link set mirror0 up

  # Mirror both directions of prod's eth0. This kernel has no matchall classifier, so a
  # u32 rule that matches every packet stands in for it.
  step tc -n "$prod" qdisc add dev eth0 clsact
  local dir
  for dir in ingress egress; do
    step tc -n "$prod" filter add dev eth0 "$dir" protocol all prio 1 \
      u32 match u32 0 0 action mirred egress mirror dev mirror0
  done

  trap - EXIT
  if [[ $quiet != 1 ]]; then
    cat <<EOF
lab $p is up
  $client   eth0 10.213.1.1/24 fd00:213:1::1/64
  $prod     eth0 10.213.1.2/24 fd00:213:1::2/64 (production's NIC, mirrored in and out; gso_max_segs 1)
  $(printf '%*s' ${#prod} '')     eth1 10.213.2.1/24 mtu $MIRROR_LINK_MTU; mirror0 vxlan id $MIRROR_VNI -> 10.213.2.2:$MIRROR_PORT mtu $MIRROR_DEV_MTU
  $adapter  eth0 10.213.2.2/24 mtu $MIRROR_LINK_MTU (default route), eth1 10.213.3.1/24
  $tst     eth0 10.213.3.2/24
adapter link: eth0 (vni $MIRROR_VNI, port $MIRROR_PORT)
next: ip netns exec $adapter scripts/vxlan-up.sh --vni $MIRROR_VNI --dev eth0
EOF
  fi
}

(($# >= 1)) || { usage >&2; die $EX_USAGE "a command is required"; }
cmd=$1
shift
case $cmd in
  -h | --help) usage; exit 0 ;;
  up | down) ;;
  *) usage >&2; die $EX_USAGE "unknown command: $cmd" ;;
esac

prefix="" quiet=0
while (($# > 0)); do
  case $1 in
    --quiet) quiet=1 ;;
    -*) usage >&2; die $EX_USAGE "unknown flag: $1" ;;
    *)
      [[ -z $prefix ]] || { usage >&2; die $EX_USAGE "unexpected argument: $1"; }
      prefix=$1
      ;;
  esac
  shift
done
[[ -n $prefix ]] || { usage >&2; die $EX_USAGE "PREFIX is required"; }
if [[ ! $prefix =~ ^mr[A-Za-z0-9._-]*$ ]] || ((${#prefix} > 32)); then
  die $EX_PREFIX "bad prefix '$prefix': must start with 'mr', use only [A-Za-z0-9._-], at most 32 characters"
fi

for tool in ip tc; do
  command -v "$tool" >/dev/null 2>&1 || die $EX_NOTOOL "$tool not found: install iproute2"
done

case $cmd in
  up) lab_up "$prefix" "$quiet" ;;
  down)
    lab_down "$prefix" || die $EX_STEP "lab $prefix is not fully down"
    [[ $quiet == 1 ]] || echo "lab $prefix is down"
    ;;
esac
