#!/usr/bin/env bash
# Runs every Fuzz target in the module for FUZZTIME each (make fuzz).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
fuzztime="${FUZZTIME:-20s}"

found=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "${pkg}" | grep '^Fuzz' || true); do
    found=$((found + 1))
    echo "fuzzing ${pkg} ${target} for ${fuzztime}"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "${fuzztime}" "${pkg}"
  done
done
echo "ran ${found} fuzz targets"
