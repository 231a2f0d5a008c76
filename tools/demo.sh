#!/usr/bin/env bash
# One command from a fresh clone to a resolved identity graph: installs what is missing, builds
# a release binary, generates a sample archive (people with emails, phones, cookies, devices,
# households, orders) and a file of corrections (unlink/forget/retract/link records), loads
# both, and runs a few queries.
#   tools/demo.sh [EVENTS]     (default 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-200000}
tools/install-deps.sh
echo "== building (release)"
swift build -c release 2>&1 | tail -1
bin=$(swift build -c release --show-bin-path)/idgraph
mkdir -p demo
rm -rf demo/idgraph.db
export IDGRAPH_DB=demo/idgraph.db
echo "== generating $events events into demo/events.ndjson.gz, and corrections (unlink, forget, retract, link) into demo/corrections.ndjson"
"$bin" generate --events "$events" --duplicate-share 0.01 --gzip --output demo/events.ndjson.gz --truth demo/truth.csv
"$bin" generate --events 2000 --seed 7 --control-share 0.5 --output demo/corrections.ndjson
echo "== idgraph load demo/events.ndjson.gz demo/corrections.ndjson   (the events take the bulk path, the corrections go batch by batch)"
"$bin" load demo/events.ndjson.gz demo/corrections.ndjson
echo "== idgraph stats"
"$bin" stats
echo "== idgraph check"
"$bin" check
# The generated archive covers 2024: profiles (lifecycle stages) are evaluated as of its end.
asof=2024-12-31
run_query() { echo "== idgraph query --as-of $asof '$1'"; "$bin" query --as-of "$asof" "$1" || true; }
run_query "ENTITY OF email:PERSON1000@example.com"
run_query "FIND ENTITIES WHERE lifecycle = 'hero' ORDER BY revenue DESC LIMIT 5"
run_query "COMPUTE RFM"
run_query "CREATE SEGMENT french_repeat_buyers AS FIND ENTITIES WHERE profile.country = 'FR' AND orders >= 2"
run_query "SEGMENTS"
run_query "HOUSEHOLD OF email:person1000@example.com"
run_query "PATH email:person1000@example.com TO cookie:ck-1000-2"
run_query "EVENTS OF email:person1000@example.com LIMIT 5"
run_query "FIND ENTITIES WHERE revenue > 0 ORDER BY revenue DESC LIMIT 5"
run_query "COUNT ENTITIES WHERE email >= 2"
run_query "EXPLAIN RESOLVE cookie:ck-1000-0"
echo "== idgraph export --format csv --output demo/export.csv"
"$bin" export --format csv --output demo/export.csv
head -5 demo/export.csv
echo "... $(($(wc -l < demo/export.csv) - 1)) identifiers in entities"
echo "== idgraph export --segment french_repeat_buyers --as-of $asof --output demo/segment.csv"
"$bin" export --segment french_repeat_buyers --as-of "$asof" --output demo/segment.csv
echo "$(($(wc -l < demo/segment.csv) - 1)) identifiers in the segment's entities"
echo "== idgraph export --profiles --format ndjson --segment french_repeat_buyers --as-of $asof --output demo/profiles.ndjson"
"$bin" export --profiles --format ndjson --segment french_repeat_buyers --as-of "$asof" --output demo/profiles.ndjson
head -2 demo/profiles.ndjson
echo "... $(wc -l < demo/profiles.ndjson) profiles"
echo
echo "The database is in demo/idgraph.db. Explore it: $bin shell --db demo/idgraph.db   (.help lists the statements)"
