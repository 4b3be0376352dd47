#!/usr/bin/env bash
# Renders the host-mode table sluice would install and checks it with `nft -c -f`, installing
# nothing: a pre-flight for configuration management before `sluice nft apply`. Root (nft -c).
#   nftables/check-host-mode.sh --uid agent [--config /etc/sluice/sluice.yaml]
#   nftables/check-host-mode.sh --cgroup agents.slice [--config FILE]
# SLUICE names the binary to render with (default: sluice on PATH).
set -euo pipefail

case "${1:-}" in
  -h | --help)
    sed -n '2,6p' "$0"
    exit 0
    ;;
  "")
    sed -n '2,6p' "$0" >&2
    exit 2
    ;;
esac
sluice="${SLUICE:-sluice}"
rendered="$("$sluice" nft render --host "$@")"
nft -c -f - <<<"$rendered"
echo "ok: the host-mode table for $* passes nft -c"
