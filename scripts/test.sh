#!/usr/bin/env bash
# The whole test suite, as root: unit and privileged tests on this kernel,
# then the ipvlan tests in a Debian guest kernel (tests/guest/ci.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo test --workspace --release -- --nocapture 2>&1 | tee /tmp/dplab-tests.log
echo "tests: skipped on this kernel:"
grep -h "^SKIPPED" /tmp/dplab-tests.log | sort -u || true
tests/guest/ci.sh
