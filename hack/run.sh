#!/usr/bin/env bash
# Starts a local cluster of 3 members in the background (make run): clients
# on 127.0.0.1:2379, :22379, :32379 and peers on :2380, :22380, :32380, as
# etcd's Procfile lays them out. Data lives in .run/<name>, logs in
# .run/<name>.log, pids in .run/<name>.pid. RUN_MEMBERS=1 starts one member.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
run=.run
timeout="${RUN_TIMEOUT:-30}"
members="${RUN_MEMBERS:-3}"
client_ports=(2379 22379 32379)
peer_ports=(2380 22380 32380)

mkdir -p "${run}"
for pidfile in "${run}"/*.pid; do
  [ -e "${pidfile}" ] || continue
  if kill -0 "$(cat "${pidfile}")" 2>/dev/null; then
    echo "a local cluster is already running ($(basename "${pidfile}" .pid)); 'make stop' stops it"
    exit 0
  fi
  rm -f "${pidfile}"
done

initial=()
for ((i = 0; i < members; i++)); do
  initial+=("ballast-${i}=http://127.0.0.1:${peer_ports[$i]}")
done
initial_cluster="$(IFS=,; echo "${initial[*]}")"

endpoints=()
for ((i = 0; i < members; i++)); do
  name="ballast-${i}"
  client="http://127.0.0.1:${client_ports[$i]}"
  peer="http://127.0.0.1:${peer_ports[$i]}"
  endpoints+=("${client}")
  # setsid detaches the member from make's process group, so it outlives make.
  setsid bin/ballast node \
    --name="${name}" \
    --data-dir="${run}/${name}" \
    --listen-client-urls="${client}" \
    --advertise-client-urls="${client}" \
    --listen-peer-urls="${peer}" \
    --initial-advertise-peer-urls="${peer}" \
    --initial-cluster="${initial_cluster}" \
    --initial-cluster-token=ballast-local \
    >"${run}/${name}.log" 2>&1 </dev/null &
  echo "$!" >"${run}/${name}.pid"
done
eps="$(IFS=,; echo "${endpoints[*]}")"

deadline=$((SECONDS + timeout))
until bin/etcdctl --endpoints="${eps}" --dial-timeout=1s --command-timeout=2s endpoint health --cluster >/dev/null 2>&1; do
  for ((i = 0; i < members; i++)); do
    name="ballast-${i}"
    if ! kill -0 "$(cat "${run}/${name}.pid")" 2>/dev/null; then
      echo "${name} exited during start-up. Last log lines (${run}/${name}.log):" >&2
      tail -n 40 "${run}/${name}.log" >&2 || true
      "${root}/hack/stop.sh" >/dev/null || true
      exit 1
    fi
  done
  if [ "${SECONDS}" -ge "${deadline}" ]; then
    echo "the cluster did not become healthy within ${timeout}s; stopping it. Logs are in ${run}/." >&2
    tail -n 20 "${run}"/ballast-*.log >&2 || true
    "${root}/hack/stop.sh" >/dev/null || true
    exit 1
  fi
  sleep 0.2
done

cat <<MSG
A ${members}-member Ballast cluster is running, serving clients at:
  ${eps}
  data: ${run}/ballast-*/   logs: ${run}/ballast-*.log

Try it:
  export ETCDCTL_ENDPOINTS=${eps}
  bin/etcdctl put foo bar
  bin/etcdctl get foo
  bin/etcdctl member list -w table
  bin/etcdctl endpoint status --cluster -w table

Stop it:
  make stop
MSG
