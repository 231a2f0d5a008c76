#!/usr/bin/env bash
# Times daily loads on top of a database that already holds data (the batch-by-batch path every
# load onto existing data takes), as docs/benchmarks.md reports them:
#   1. the base archive, loaded in bulk into a new database (the starting state, kept aside);
#   2. "known day": a second day of the same people (same seed, new event ids: every identifier
#      is known), loaded onto a fresh copy of the base;
#   3. "spread day": the archive `generate --events DAY_EVENTS` would make, with its own event
#      ids, loaded onto a fresh copy — its DAY_EVENTS/10 people are the base archive's first ones,
#      seen all through it, so their nodes are spread over the whole database, and part of
#      their identifiers are new (new nodes, links and merges). With DAY_EVENTS = BASE_EVENTS it
#      is the known day again: make the base larger. Loaded twice: with the default
#      --transaction-size and with 100,000 (one batch per transaction, as before session 11).
# Each load is checked with `idgraph check`. Release build; prints wall time and peak RSS.
#   tools/bench_daily_load.sh [BASE_EVENTS [DAY_EVENTS [WORKDIR]]]   (default 10000000 1000000 /tmp/idgraph-daily)
# Needs the archives (160 MB per million events) and twice the base database (about 0.55 GB per
# million base events) free in WORKDIR: some 13 GB with the defaults, which take a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-10000000}
day=${2:-1000000}
work=${3:-/tmp/idgraph-daily}
tools/install-deps.sh >/dev/null
swift build -c release 2>&1 | tail -1
bin=$(swift build -c release --show-bin-path)/idgraph
mkdir -p "$work"
timed() {  # timed LABEL COMMAND...: runs it, prints "LABEL: S s, peak RSS M MiB"
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null
  read -r secs kib < "$work/time"
  printf '%-40s %8.2f s   peak RSS %6d MiB\n' "$label" "$secs" $((kib / 1024))
}
if [ ! -f "$work/base-$base.ndjson" ]; then
  "$bin" generate --events "$base" --output "$work/base-$base.ndjson" >/dev/null
fi
if [ ! -f "$work/known-$base-$day.ndjson" ]; then
  # The same seed and size with another event-id prefix: the same people and journeys.
  set +o pipefail  # head stops the generator early
  "$bin" generate --events "$base" --id-prefix d2- | head -n "$day" > "$work/known-$base-$day.ndjson"
  set -o pipefail
fi
if [ ! -f "$work/spread-$day.ndjson" ]; then
  "$bin" generate --events "$day" --id-prefix x- --output "$work/spread-$day.ndjson" >/dev/null
fi
rm -rf "$work/base.db"
timed "bulk load of $base base events" "$bin" load --quiet --db "$work/base.db" "$work/base-$base.ndjson"
# The spread day twice: with the default transaction size (up to a million operations on a large
# database) and in transactions of one batch.
for kind in known spread spread-100k; do
  file=$work/$kind-$base-$day.ndjson
  options=()
  [ "$kind" != known ] && file=$work/spread-$day.ndjson
  [ "$kind" = spread-100k ] && options=(--transaction-size 100000)
  rm -rf "$work/day.db"
  cp -r "$work/base.db" "$work/day.db"
  sync
  timed "$day $kind-day events on top" "$bin" load --quiet --db "$work/day.db" "${options[@]}" "$file"
  "$bin" check --db "$work/day.db" | tail -1
done
rm -rf "$work/day.db"
