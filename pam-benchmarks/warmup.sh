#!/usr/bin/env bash
# Warm-up of a fresh gateway replica: latency of the first calls after the listening line.
#
#   pam-benchmarks/warmup.sh                      # java on the PATH, gateway defaults
#   JAVA=/usr/lib/jvm/temurin-25-jdk-amd64/bin/java pam-benchmarks/warmup.sh
#   JAVA_OPTS='-XX:AOTCache=gw.aot' pam-benchmarks/warmup.sh
#   SERVE_OPTS='--warmup 0' pam-benchmarks/warmup.sh
#
# Starts the harness's fake model server (upstream.mjs) and a fresh gateway
# (pam-gateway/target/pam-gateway.jar, build it first) on 127.0.0.1, with the full default
# policy: an API key, an entitlement for the model, every masking detector, recording batched
# with masked bodies. The moment the gateway prints its listening line, bench.py sends N
# sequential completions (no warm-up of its own) and then M streams, alternating with the same
# calls made directly to the model server (A B A B ...), which was warmed first. Prints the time from starting the JVM to
# the listening line, then the p50 of each window of W calls against the steady state (the last
# 5,000 calls). Everything stays on loopback; both servers are stopped by PID.
#
# Environment: JAVA (java binary), JAVA_OPTS (JVM options), SERVE_OPTS (extra `serve` options),
# N (completions, default 20000), M (streams, default 300), W (window, default 2000),
# DIRECT=0 (leave out the interleaved direct calls), UPSTREAM_WARMUP (calls that warm the model
# server before the gateway starts, default 3000), BENCH_DIR (default ../shared/bench/gateway
# next to the repository), JAR, OUT (where samples.csv and the logs go; default a new directory
# under ${TMPDIR:-/tmp}).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
JAVA="${JAVA:-java}"
JAVA_OPTS="${JAVA_OPTS:-}"
SERVE_OPTS="${SERVE_OPTS:-}"
N="${N:-20000}"
M="${M:-300}"
W="${W:-2000}"
DIRECT="${DIRECT:-1}"
UPSTREAM_WARMUP="${UPSTREAM_WARMUP:-3000}"
BENCH_DIR="${BENCH_DIR:-$REPO/../shared/bench/gateway}"
JAR="${JAR:-$REPO/pam-gateway/target/pam-gateway.jar}"
OUT="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/inferpam-warmup.XXXXXX")}"
mkdir -p "$OUT"

[[ -f "$JAR" ]] || { echo "warmup.sh: $JAR missing; build it first:" \
  "./mvnw -B -q -DskipTests package -pl pam-gateway -am" >&2; exit 2; }
[[ -f "$BENCH_DIR/bench.py" ]] || { echo "warmup.sh: no bench.py in $BENCH_DIR (set BENCH_DIR)" >&2; exit 2; }

KEY="sk-warmup-bench"
KEY_SHA=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
cat >"$OUT/policy.yaml" <<EOF
version: 1
identity:
  api-keys:
    - name: bench
      sha256: $KEY_SHA
      groups: [bench]
upstream:
  credential:
    from-env: WARMUP_UPSTREAM_KEY
entitlements:
  - groups: [bench]
    models: ["gpt-4o-mini"]
    operations: [chat]
masking:
  strategy: redact
recording:
  directory: $OUT/recordings
  bodies: masked
  durability: batched
EOF

UP_PID=""
GW_PID=""
cleanup() {
  [[ -n "$GW_PID" ]] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null || true
  [[ -n "$UP_PID" ]] && kill "$UP_PID" 2>/dev/null && wait "$UP_PID" 2>/dev/null || true
}
trap cleanup EXIT

# Waits until FILE has a line matching "listening on http://127.0.0.1:PORT"; prints PORT.
await_port() {
  local file="$1" pid="$2" line
  for _ in $(seq 1 6000); do
    line=$(grep -m1 -o 'listening on http://127\.0\.0\.1:[0-9]*' "$file" 2>/dev/null || true)
    if [[ -n "$line" ]]; then echo "${line##*:}"; return 0; fi
    kill -0 "$pid" 2>/dev/null || { echo "warmup.sh: process $pid exited:" >&2; cat "$file" >&2; return 1; }
    sleep 0.01
  done
  echo "warmup.sh: no listening line in $file" >&2
  return 1
}

node "$BENCH_DIR/upstream.mjs" 0 >"$OUT/upstream.log" 2>&1 &
UP_PID=$!
UP_PORT=$(await_port "$OUT/upstream.log" "$UP_PID")

# A model server runs long before a replica starts: warm it (node's own JIT) first, so that the
# windows below measure the gateway's warm-up, not the upstream's.
if [[ "$UPSTREAM_WARMUP" != 0 ]]; then
  python3 "$BENCH_DIR/bench.py" -w 0 -n "$UPSTREAM_WARMUP" -m 100 --stream-warmup 0 \
    "direct=http://127.0.0.1:$UP_PORT/v1/chat/completions" >"$OUT/upstream-warmup.txt"
fi

# shellcheck disable=SC2086 # JAVA_OPTS and SERVE_OPTS are word lists on purpose
start_ns=$(date +%s%N)
WARMUP_UPSTREAM_KEY=sk-upstream "$JAVA" $JAVA_OPTS -jar "$JAR" serve --policy "$OUT/policy.yaml" \
  --upstream "http://127.0.0.1:$UP_PORT" --port 0 $SERVE_OPTS >"$OUT/gateway.out" 2>"$OUT/gateway.err" &
GW_PID=$!
GW_PORT=$(await_port "$OUT/gateway.out" "$GW_PID")
listening_ns=$(date +%s%N)
# processor time the JVM used until then (user + system), less sensitive to other load than the wall time
read -r -a stat <"/proc/$GW_PID/stat"
cpu_ms=$(( (stat[13] + stat[14]) * 1000 / $(getconf CLK_TCK) ))

targets=("ours=http://127.0.0.1:$GW_PORT/v1/chat/completions;Authorization=Bearer $KEY")
baseline=(--baseline ours)
if [[ "$DIRECT" != 0 ]]; then
  targets=("direct=http://127.0.0.1:$UP_PORT/v1/chat/completions" "${targets[@]}")
  baseline=()
fi
python3 "$BENCH_DIR/bench.py" -w 0 -n "$N" -m "$M" --stream-warmup 0 "${baseline[@]}" \
  --raw "$OUT/samples.csv" --cpu-pid "ours=$GW_PID" "${targets[@]}" >"$OUT/bench.txt"

echo "java: $("$JAVA" $JAVA_OPTS -version 2>&1 | head -1)  JAVA_OPTS='$JAVA_OPTS' SERVE_OPTS='$SERVE_OPTS'"
echo "JVM start to listening line: $(( (listening_ns - start_ns) / 1000000 )) ms, $cpu_ms ms of processor time"
grep -i 'cpu' "$OUT/bench.txt" | head -3 || true
python3 - "$OUT/samples.csv" "$W" <<'EOF'
import csv, statistics, sys
path, w = sys.argv[1], int(sys.argv[2])
rows = {}
for r in csv.DictReader(open(path)):
    rows.setdefault((r['phase'], r['target']), []).append(float(r['latency_or_ttft_ms']))
def p50(xs): return statistics.median(xs) if xs else float('nan')
ours = rows.get(('plain', 'ours'), [])
direct = rows.get(('plain', 'direct'), [])
steady = p50(ours[-5000:])
steady_d = p50(direct[-5000:]) if direct else None
print(f"completions: {len(ours)} calls; steady state = p50 of the last {min(5000, len(ours))}")
head = f"{'calls':>13} {'p50 ms':>8} {'x steady':>9}"
if direct: head += f" {'direct ms':>10} {'added ms':>9}"
print(head)
for i in range(0, len(ours), w):
    win = ours[i:i + w]
    line = f"{i + 1:>6}-{i + len(win):<6} {p50(win):8.3f} {p50(win) / steady:9.2f}"
    if direct:
        d = p50(direct[i:i + w])
        line += f" {d:10.3f} {p50(win) - d:9.3f}"
    print(line)
line = f"{'steady':>13} {steady:8.3f} {1:9.2f}"
if direct: line += f" {steady_d:10.3f} {steady - steady_d:9.3f}"
print(line)
s = rows.get(('stream', 'ours'), [])
sd = rows.get(('stream', 'direct'), [])
if s:
    print(f"streams (after the completions): time to first event p50, ms")
    for lo, hi in ((0, 100), (len(s) - 100, len(s))):
        lo = max(lo, 0)
        line = f"{lo + 1:>6}-{hi:<6} {p50(s[lo:hi]):8.3f}"
        if sd: line += f"   direct {p50(sd[lo:hi]):.3f}  added {p50(s[lo:hi]) - p50(sd[lo:hi]):.3f}"
        print(line)
EOF
echo "samples and logs: $OUT"
