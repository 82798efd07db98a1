#!/usr/bin/env bash
# Stops the members started by hack/run.sh (make stop): SIGTERM to each, so a
# leader hands over first, then waits for them to exit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run="${root}/.run"
timeout="${STOP_TIMEOUT:-15}"

shopt -s nullglob
pidfiles=("${run}"/*.pid)
if [ ${#pidfiles[@]} -eq 0 ]; then
  echo "no local cluster is running (no pid files in ${run})"
  exit 0
fi
for pidfile in "${pidfiles[@]}"; do
  pid="$(cat "${pidfile}")"
  name="$(basename "${pidfile}" .pid)"
  if ! kill -0 "${pid}" 2>/dev/null; then
    rm -f "${pidfile}"
    continue
  fi
  kill -TERM "${pid}"
  deadline=$((SECONDS + timeout))
  while kill -0 "${pid}" 2>/dev/null; do
    if [ "${SECONDS}" -ge "${deadline}" ]; then
      echo "${name} (pid ${pid}) did not stop within ${timeout}s of SIGTERM; sending SIGKILL" >&2
      kill -KILL "${pid}" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "${pidfile}"
  echo "${name} stopped"
done
