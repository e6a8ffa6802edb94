#!/usr/bin/env bash
# Starts a local Chorus cluster on one machine: a 3-server NATS cluster
# (JetStream, R3 streams and KV buckets, each server with its own temp store
# dir) and 3 Chorus nodes in the cluster profile. Prints the URLs and an
# operator token for the /admin endpoints; Ctrl-C stops everything it started.
#
#   scripts/cluster.sh
#
# Settings (environment variables, all optional):
#   NATS_PORTS       client ports of the 3 nats-servers      default "4222 4223 4224"
#   NATS_ROUTE_PORTS cluster route ports                      default "6222 6223 6224"
#   CHORUS_PORTS     HTTP/WebSocket ports of the 3 nodes      default "8081 8082 8083"
#   CHORUS_AUTH_SECRET  shared token secret (>= 16 chars)     default: a random one per run
#   CHORUS_DEV_SIGNIN   1 (default here) enables the demo page's sign-in; 0 turns it off
#   CHORUS_LOG_LEVEL    node log level                        default info
#   NATS_SERVER_BIN     nats-server binary                    default nats-server
#   CLUSTER_DIR      where stores, configs and logs go        default a new temp dir
#   KEEP_DATA=1      keep CLUSTER_DIR after stopping          default: removed
# Any other CHORUS_* variable (timing, ask timeout, ...) is passed to every
# node as it is; see docs/cluster.md.
set -euo pipefail

cd "$(dirname "$0")/.."
read -r -a NATS_PORT_LIST <<<"${NATS_PORTS:-4222 4223 4224}"
read -r -a ROUTE_PORT_LIST <<<"${NATS_ROUTE_PORTS:-6222 6223 6224}"
read -r -a HTTP_PORT_LIST <<<"${CHORUS_PORTS:-8081 8082 8083}"
NATS_BIN="${NATS_SERVER_BIN:-nats-server}"
SIZE=3

die() { echo "cluster.sh: $*" >&2; exit 1; }
[ "${#NATS_PORT_LIST[@]}" -eq $SIZE ] || die "NATS_PORTS needs $SIZE ports"
[ "${#ROUTE_PORT_LIST[@]}" -eq $SIZE ] || die "NATS_ROUTE_PORTS needs $SIZE ports"
[ "${#HTTP_PORT_LIST[@]}" -eq $SIZE ] || die "CHORUS_PORTS needs $SIZE ports"
command -v "$NATS_BIN" >/dev/null || die "no $NATS_BIN on PATH (install nats-server 2.9+, or set NATS_SERVER_BIN)"
command -v node >/dev/null || die "no node on PATH (Node.js 20+)"
[ -d node_modules ] || die "run npm install first"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "${NATS_PORT_LIST[@]}" "${ROUTE_PORT_LIST[@]}" "${HTTP_PORT_LIST[@]}"; do
  if port_busy "$p"; then die "port $p is in use; pick others, e.g. NATS_PORTS=\"14222 14223 14224\" NATS_ROUTE_PORTS=\"16222 16223 16224\" CHORUS_PORTS=\"18081 18082 18083\""; fi
done

DIR="${CLUSTER_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/chorus-cluster.XXXXXX")}"
mkdir -p "$DIR"
export CHORUS_AUTH_SECRET="${CHORUS_AUTH_SECRET:-$(node -e "console.log(require('crypto').randomBytes(24).toString('base64url'))")}"
[ "${#CHORUS_AUTH_SECRET}" -ge 16 ] || die "CHORUS_AUTH_SECRET must be at least 16 characters"

PIDS_NODES=()
PIDS_NATS=()
stopping=0
cleanup() {
  [ $stopping -eq 1 ] && return
  stopping=1
  trap - INT TERM
  echo
  echo "stopping Chorus nodes ..."
  # SIGTERM: each node persists and releases its actors and leaves the membership
  for pid in "${PIDS_NODES[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS_NODES[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  echo "stopping nats-servers ..."
  for pid in "${PIDS_NATS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS_NATS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ "${KEEP_DATA:-0}" = 1 ]; then echo "data and logs kept in $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- NATS: 3 servers, one cluster, JetStream on each -------------------------
NATS_URLS=()
for i in 0 1 2; do
  name="n$((i + 1))"
  routes=()
  for j in 0 1 2; do [ "$j" -ne "$i" ] && routes+=("nats-route://127.0.0.1:${ROUTE_PORT_LIST[$j]}"); done
  conf="$DIR/nats-$name.conf"
  cat >"$conf" <<EOF
server_name: $name
listen: 127.0.0.1:${NATS_PORT_LIST[$i]}
jetstream { store_dir: "$DIR/nats-$name", max_memory_store: 256MB, max_file_store: 2GB }
cluster { name: chorus-local, listen: 127.0.0.1:${ROUTE_PORT_LIST[$i]}, routes: [$(IFS=,; echo "${routes[*]}")] }
EOF
  # own session: Ctrl-C reaches only this script, which stops the nodes first and NATS last
  setsid "$NATS_BIN" -c "$conf" >"$DIR/nats-$name.log" 2>&1 &
  PIDS_NATS+=($!)
  NATS_URLS+=("nats://127.0.0.1:${NATS_PORT_LIST[$i]}")
done
NATS_URL_CSV="$(IFS=,; echo "${NATS_URLS[*]}")"

wait_port() {
  for _ in $(seq 1 150); do port_busy "$1" && return 0; sleep 0.1; done
  die "nothing listens on port $1 after 15 s (logs in $DIR)"
}
for p in "${NATS_PORT_LIST[@]}"; do wait_port "$p"; done
echo "nats-servers up on ${NATS_URL_CSV}; waiting for the JetStream meta leader ..."
CHORUS_NATS_URL="$NATS_URL_CSV" node --input-type=module -e "
  const { connect } = await import('@nats-io/transport-node');
  const nc = await connect({ servers: process.env.CHORUS_NATS_URL.split(',') });
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      const r = await nc.request('\$JS.API.INFO', undefined, { timeout: 1000 });
      if (!JSON.parse(new TextDecoder().decode(r.data)).error) break;
    } catch {}
    if (Date.now() > deadline) { console.error('JetStream has no meta leader after 30 s'); process.exit(1); }
    await new Promise((r) => setTimeout(r, 250));
  }
  await nc.close();
" || die "JetStream did not become ready (logs in $DIR)"

# ---- Chorus: 3 nodes in the cluster profile ------------------------------------
for i in 0 1 2; do
  id="n$((i + 1))"
  port="${HTTP_PORT_LIST[$i]}"
  CHORUS_PROFILE=cluster CHORUS_NODE_ID="$id" CHORUS_HOST=127.0.0.1 CHORUS_PORT="$port" \
  CHORUS_PUBLIC_URL="http://127.0.0.1:$port" CHORUS_NATS_URL="$NATS_URL_CSV" CHORUS_NATS_REPLICAS=3 \
  CHORUS_DATA_DIR="$DIR/$id" CHORUS_DEV_SIGNIN="${CHORUS_DEV_SIGNIN:-1}" CHORUS_LOG_LEVEL="${CHORUS_LOG_LEVEL:-info}" \
    setsid node --max-semi-space-size=64 --import tsx cluster/main.ts > >(trap '' INT TERM; exec sed -u "s/^/[$id] /") 2>&1 &
  PIDS_NODES+=($!)
done

for i in 0 1 2; do
  url="http://127.0.0.1:${HTTP_PORT_LIST[$i]}"
  ok=0
  for _ in $(seq 1 300); do
    kill -0 "${PIDS_NODES[$i]}" 2>/dev/null || die "node n$((i + 1)) exited during startup"
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz" 2>/dev/null)" = 200 ]; then ok=1; break; fi
    sleep 0.1
  done
  [ $ok = 1 ] || die "node n$((i + 1)) not ready after 30 s"
done

OPERATOR_TOKEN="$(node --import tsx --input-type=module -e "
  const { TokenSigner } = await import('./cluster/edge/auth.ts');
  console.log(new TokenSigner(process.env.CHORUS_AUTH_SECRET).sign({ sub: 'operator', ws: ['*'], kind: 'operator' }));
")"

cat <<EOF

Chorus cluster is up (data, configs and logs in $DIR)
  NATS      $NATS_URL_CSV   (JetStream, R3)
  nodes     http://127.0.0.1:${HTTP_PORT_LIST[0]}  http://127.0.0.1:${HTTP_PORT_LIST[1]}  http://127.0.0.1:${HTTP_PORT_LIST[2]}
  demo page http://127.0.0.1:${HTTP_PORT_LIST[0]}/   (dev sign-in: ${CHORUS_DEV_SIGNIN:-1})
  secret    CHORUS_AUTH_SECRET=$CHORUS_AUTH_SECRET
  operator token (12 h), for the /admin endpoints and the inspector:
    export CHORUS_ADMIN_TOKEN=$OPERATOR_TOKEN CHORUS_URL=http://127.0.0.1:${HTTP_PORT_LIST[0]}

Try (after the export above):
  node scripts/chorus.mjs nodes        # the inspector over HTTP: members, leader, load (also: ring, actors, placement, drain n3)
  node scripts/chorus.mjs nodes --nats $NATS_URL_CSV   # the same through NATS (any node answers)
  curl -s -H "authorization: Bearer \$CHORUS_ADMIN_TOKEN" http://127.0.0.1:${HTTP_PORT_LIST[0]}/admin/placement
  curl -s -H "authorization: Bearer \$CHORUS_ADMIN_TOKEN" http://127.0.0.1:${HTTP_PORT_LIST[1]}/admin/actors
  curl -s -X POST -H "authorization: Bearer \$CHORUS_ADMIN_TOKEN" http://127.0.0.1:${HTTP_PORT_LIST[2]}/admin/drain   # n3 hands off its actors, then exits
Ctrl-C stops everything.
EOF

# wait until Ctrl-C, or until every node has exited (drained or crashed)
while :; do
  alive=0
  for pid in "${PIDS_NODES[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
  [ $alive = 1 ] || { echo "every Chorus node has exited"; break; }
  sleep 1
done
