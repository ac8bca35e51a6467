#!/usr/bin/env bash
# Runs every test. Provisions what the tests need first, on a fresh Debian machine with the .NET SDK:
# Debian's Chromium (browser tests) and PostgreSQL (the second store), installed when missing; a
# throwaway PostgreSQL cluster on 127.0.0.1 with its data in a temp folder, stopped and removed after.
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if ((${#missing[@]})); then
  echo "test.sh: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
work=$(mktemp -d /tmp/carecoordination-test.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/pg"

# PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres user.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$work/pg"
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

port=55432
while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done

stop_postgres() {
  as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap stop_postgres EXIT

as_pg "$pgbin/initdb" -D "$work/pg/data" -A trust -U postgres >"$work/initdb.log" 2>&1 \
  || { cat "$work/initdb.log"; exit 1; }
# fsync off: a throwaway cluster need not survive a power cut, and tests run faster.
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w \
  -o "-k $work/pg -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=300" start >/dev/null \
  || { cat "$work/pg/server.log"; exit 1; }
export CARECOORDINATION_TEST_POSTGRES="Host=127.0.0.1;Port=$port;Username=postgres;Database=postgres"
echo "test.sh: throwaway PostgreSQL on 127.0.0.1:$port"

status=0
dotnet test CareCoordination.sln -c Release --logger "trx" --results-directory "$work/results" "$@" || status=$?

# Each test process removes its own scratch folder as it ends, but the test runner may end it first (tests/Shared/TestScratch.cs):
# what a process no longer running left goes now rather than at the next run.
for scratch in "${TMPDIR:-/tmp}"/carecoordination-tests/run-*; do
  [ -d "$scratch" ] && ! kill -0 "${scratch##*run-}" 2>/dev/null && rm -rf "$scratch"
done

# The benchmark (docs/performance.md) in its short mode, so that it cannot rot: every figure on both stores with tiny
# counts, failing only on correctness (a submission not acknowledged, a referral lost, a push missed), never on timing.
# Only on a whole run (no arguments, as CI runs it): a filtered run is someone looking at a few tests.
if [ $# -eq 0 ]; then
  bench_dll=bench/CareCoordination.Bench/bin/Release/net10.0/CareCoordination.Bench.dll
  [ -f "$bench_dll" ] || dotnet build bench/CareCoordination.Bench -c Release -v quiet
  echo "test.sh: benchmark, short mode"
  bench=0
  dotnet "$bench_dll" all --short --postgres "Host=127.0.0.1;Port=$port;Username=postgres" >"$work/bench.log" 2>&1 || bench=$?
  grep -E '^\|' "$work/bench.log" || true
  if [ "$bench" != 0 ]; then
    cat "$work/bench.log"
    echo "test.sh: benchmark short mode FAILED (exit $bench)"
    status=1
  else
    grep -E '^correctness:' "$work/bench.log" | sed 's/^/test.sh: benchmark short mode: /'
  fi
fi

# One closing line for the whole run, summed over every test project.
if compgen -G "$work/results/*.trx" >/dev/null; then
  grep -ho '<Counters [^>]*>' "$work"/results/*.trx | awk '
    { for (i = 1; i <= NF; i++) { split($i, kv, "=\""); gsub(/"/, "", kv[2]); c[kv[1]] += kv[2] } }
    END { printf "%d passed, %d failed, %d skipped\n", c["passed"], c["failed"], c["total"] - c["executed"] }'
fi
# A test project that does not build leaves no results, and the counts above would read as a pass without it.
if [ "$status" != 0 ]; then
  echo "test.sh: FAILED (exit $status): see the errors above"
fi
exit $status
