#!/usr/bin/env bash
# Lists the nftables tables sluice made on this host (jails: inet sluice_<id>; host mode: inet
# sluice_host) with their rules and counters: what each redirected and what it refused. Read-only;
# root (nft list). Exit 0 with a note on stderr when there are none.
#   nftables/sluice-tables.sh            every sluice table, in full
#   nftables/sluice-tables.sh --names    their family and name only
set -euo pipefail

names_only=false
case "${1:-}" in
  "") ;;
  --names) names_only=true ;;
  -h | --help)
    sed -n '2,6p' "$0"
    exit 0
    ;;
  *)
    echo "usage: $0 [--names]" >&2
    exit 2
    ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  echo "$0: needs root (nft list)" >&2
  exit 1
fi

# Read first: a failing nft (no CAP_NET_ADMIN, say) stops here rather than look like no tables.
tables="$(nft list tables)"
found=0
while read -r _ family name; do
  case "$name" in
    sluice_*) ;;
    *) continue ;;
  esac
  found=1
  if "$names_only"; then
    echo "$family $name"
  else
    nft list table "$family" "$name"
  fi
done <<<"$tables"
if [ "$found" -eq 0 ]; then
  echo "no sluice tables" >&2
fi
