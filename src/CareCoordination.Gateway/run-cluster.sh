#!/usr/bin/env bash
# Several CareCoordination nodes on one PostgreSQL database behind the gateway (YARP), all on 127.0.0.1:
# the deployment described in docs/deployment.md, in one command. Publishes once, starts the nodes, waits
# until each answers /health, starts the gateway in front of them, and stops everything on Ctrl-C.
#
#   CARECOORDINATION_DB="Host=127.0.0.1;Port=5432;Database=carecoordination;Username=...;Password=..." \
#     src/CareCoordination.Gateway/run-cluster.sh
#
# Settings (environment):
#   CARECOORDINATION_DB   the PostgreSQL connection string (required; an empty database is migrated)
#   GATEWAY_PORT          where the gateway listens (8080)
#   NODE_PORTS            one port per node ("5081 5082")
#   HEALTH_CHECK_SECONDS  how often the gateway polls each node's /health (5)
#   CLUSTER_BIN           a folder already holding CareCoordination.Web.dll and CareCoordination.Gateway.dll
#                         (e.g. a test project's build output): used as it is, nothing is published
#   CLUSTER_STATE         where each node's home folder goes (a new temporary folder, removed at the end)
#   STOP_WITH_PID         stop the cluster when this process ends (a test run that started it and died)
# Anything else the nodes read is passed on from the environment, e.g. Demo__Seed=true Demo__Password=...
# (secrets belong there rather than on a command line, where ps shows them).
#
# It prints one line per process, "<name> pid=<pid> url=<url>", then "cluster ready: <gateway url>", and
# every process's log prefixed with its name.
set -euo pipefail

: "${CARECOORDINATION_DB:?set CARECOORDINATION_DB to the PostgreSQL connection string}"
gateway_port=${GATEWAY_PORT:-8080}
read -r -a node_ports <<<"${NODE_PORTS:-5081 5082}"
health_seconds=${HEALTH_CHECK_SECONDS:-5}
repo=$(cd "$(dirname "$0")/../.." && pwd)

if [[ -n ${CLUSTER_BIN:-} ]]; then
  web=$CLUSTER_BIN
  gateway=$CLUSTER_BIN
else
  out=$repo/src/CareCoordination.Gateway/bin/cluster
  echo "publishing to $out"
  dotnet publish "$repo/src/CareCoordination.Web/CareCoordination.Web.csproj" -c Release -o "$out/web" --nologo -v quiet
  dotnet publish "$repo/src/CareCoordination.Gateway/CareCoordination.Gateway.csproj" -c Release -o "$out/gateway" --nologo -v quiet
  web=$out/web
  gateway=$out/gateway
fi

if [[ -n ${CLUSTER_STATE:-} ]]; then
  state=$CLUSTER_STATE
  mkdir -p "$state"
else
  state=$(mktemp -d /tmp/carecoordination-cluster.XXXXXX)
fi

pids=()
stop() {
  trap - EXIT INT TERM
  ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null || true
  wait || true
  [[ -n ${CLUSTER_STATE:-} ]] || rm -rf "$state"
}
trap stop EXIT
trap 'exit 130' INT TERM

if [[ -n ${STOP_WITH_PID:-} ]]; then
  (while kill -0 "$STOP_WITH_PID" 2>/dev/null; do sleep 1; done; kill -TERM $$) &
  pids+=("$!")
fi

# start NAME FOLDER COMMAND...: runs the app from its folder (its appsettings.json and wwwroot are there),
# with a home folder of its own as a separate machine would have: the nodes share nothing but PostgreSQL.
start() {
  local name=$1 folder=$2
  shift 2
  mkdir -p "$state/$name"
  (cd "$folder" && export HOME="$state/$name" && exec "$@") > >(sed -u "s/^/[$name] /") 2>&1 &
  pids+=("$!")
  last_pid=$!
}

# healthy PORT: GET /health answers 200 (bash's /dev/tcp: no curl needed).
healthy() {
  local status=""
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET /health HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$1" >&3
  IFS= read -r -t 10 status <&3 || true
  exec 3<&- 3>&-
  [[ $status == "HTTP/1.1 200"* ]]
}

wait_healthy() {
  local name=$1 port=$2 pid=$3
  for _ in $(seq 1 600); do
    if healthy "$port" 2>/dev/null; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "$name stopped before it answered /health" >&2; exit 1; }
    sleep 0.2
  done
  echo "$name did not answer /health within 120 s" >&2
  exit 1
}

# The nodes: PostgreSQL for the store (they take turns on the migrations), and the gateway on this machine
# as the one proxy whose X-Forwarded-* headers they believe.
nodes=()
node_pids=()
for i in "${!node_ports[@]}"; do
  name=node-$((i + 1))
  url=http://127.0.0.1:${node_ports[$i]}
  start "$name" "$web" env ConnectionStrings__CareCoordination="$CARECOORDINATION_DB" \
    dotnet CareCoordination.Web.dll --urls "$url" --Database:Provider=PostgreSQL --ReverseProxy:KnownProxies=127.0.0.1
  echo "$name pid=$last_pid url=$url"
  nodes+=("--Gateway:Nodes:$i=$url")
  node_pids+=("$last_pid")
done
for i in "${!node_ports[@]}"; do
  wait_healthy "node-$((i + 1))" "${node_ports[$i]}" "${node_pids[$i]}"
done

# The gateway has no use for the database's password.
start gateway "$gateway" env -u CARECOORDINATION_DB -u ConnectionStrings__CareCoordination \
  dotnet CareCoordination.Gateway.dll --urls "http://127.0.0.1:$gateway_port" \
  --Gateway:HealthCheckSeconds="$health_seconds" "${nodes[@]}"
gateway_pid=$last_pid
echo "gateway pid=$gateway_pid url=http://127.0.0.1:$gateway_port"
wait_healthy gateway "$gateway_port" "$gateway_pid"
echo "cluster ready: http://127.0.0.1:$gateway_port"

# Runs until the gateway stops (or Ctrl-C). A node that dies is left dead: the gateway routes round it.
wait "$gateway_pid" || true
