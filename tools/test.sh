#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the whole test suite, then the
# SPEC.md conformance cases against the built binary. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
swift build --build-tests
swift test --skip-build --disable-xctest
conformance=Tests/conformance
if [ -x ../shared/conformance/run.sh ]; then conformance=../shared/conformance; fi
echo "SPEC.md conformance ($conformance):"
bin=$(swift build --show-bin-path)/idgraph
bash "$conformance/run.sh" "$bin"
