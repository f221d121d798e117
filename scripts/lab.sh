#!/usr/bin/env bash
# npm run lab: see mirror-replay work in a namespace look-alike of AWS VPC Traffic Mirroring.
# Needs root (network namespaces). Creates mr-lab-{client,prod,adapter,test}; removes them on
# exit, Ctrl-C or failure.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "lab: needs root for network namespaces: sudo npm run lab" >&2
  exit 8
fi
for tool in ip tc curl; do
  command -v "$tool" >/dev/null || { echo "lab: $tool not found (apt-get install -y iproute2 curl)" >&2; exit 11; }
done
prefix=${MR_LAB_PREFIX:-mr-lab}
cleanup() { bash scripts/lab-net.sh down "$prefix" >/dev/null 2>&1 || true; }
trap cleanup EXIT
[ -f dist/scripts/lab/demo.js ] && [ -f dist/src/cli/main.js ] || npx tsc -p tsconfig.json
# A lab left over from a killed run would make `up` refuse.
cleanup
MR_LAB_PREFIX=$prefix node dist/scripts/lab/demo.js
