#!/usr/bin/env bash
# The whole test suite, as root: unit and privileged tests on this kernel,
# then the ipvlan tests in a Debian guest kernel (tests/guest/ci.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# What this host must be able to run: a test that skips any of it fails
# (tests/common/skip.rs). Set DPLAB_REQUIRE= to require nothing.
DPLAB_REQUIRE=${DPLAB_REQUIRE-$(tests/guest/require.sh host)}
export DPLAB_REQUIRE
echo "tests: this host must run: $DPLAB_REQUIRE"
cargo test --workspace --release -- --nocapture 2>&1 | tee /tmp/dplab-tests.log
echo "tests: skipped on this kernel:"
grep -h "^SKIPPED" /tmp/dplab-tests.log | sort -u || true
tests/guest/ci.sh 2>&1 | tee /tmp/dplab-guest-tests.log

# One closing line for the host and guest runs together.
cat /tmp/dplab-tests.log /tmp/dplab-guest-tests.log |
    awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
         END { printf "tests: %d passed, %d failed\n", p, f }'
