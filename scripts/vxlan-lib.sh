# Shared by vxlan-up.sh and vxlan-down.sh (sourced, not run). Expects `prog`, EX_PERM and EX_IP.

die() { # die CODE MESSAGE...
  local code=$1
  shift
  echo "$prog: $*" >&2
  exit "$code"
}

# Runs ip, maps EPERM to EX_PERM and any other failure to EX_IP, with ip's own message.
run_ip() {
  local err
  if ! err=$(ip "$@" 2>&1 >/dev/null); then
    if [[ $err == *"Operation not permitted"* ]]; then
      die "$EX_PERM" "ip $*: not permitted (run as root or with CAP_NET_ADMIN): $err"
    fi
    die "$EX_IP" "ip $* failed: $err"
  fi
}

# The kernel's rule for interface names: 1-15 bytes, not . or .., no '/', ':' or whitespace.
valid_ifname() {
  local n=$1
  ((${#n} >= 1 && ${#n} <= 15)) || return 1
  [[ $n != . && $n != .. ]] || return 1
  [[ $n != */* && $n != *:* && ! $n =~ [[:space:]] ]] || return 1
}
