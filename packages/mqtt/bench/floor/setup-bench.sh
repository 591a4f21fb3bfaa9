#!/usr/bin/env bash
# Copies the shared bench harness to a temporary directory and adds brokers/floor-memory.sh and
# brokers/floor-durable.sh that exec the floor brokers of this checkout. Prints the directory.
#   DIR=$(packages/mqtt/bench/floor/setup-bench.sh [/work/shared/bench])
set -euo pipefail
SRC=${1:-/work/shared/bench}
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=$(mktemp -d /tmp/floor-bench.XXXXXX)
cp -r "$SRC/." "$DIR"
rm -rf "$DIR/results"
for n in memory durable; do
  printf '#!/usr/bin/env bash\nexec node %s/floor-%s.mjs "$1"\n' "$HERE" "$n" > "$DIR/brokers/floor-$n.sh"
  chmod +x "$DIR/brokers/floor-$n.sh"
done
[ -d "$DIR/node_modules/mqtt-packet" ] || (cd "$DIR" && npm install --no-audit --no-fund >&2)
echo "$DIR"
