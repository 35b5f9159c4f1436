#!/usr/bin/env bash
# The test command (README.md; .ci/run runs it after hack/install-deps.sh): formatting and lints,
# then every test of the workspace. The conformance suite drives the crius binary built here, so
# the binaries are built first.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --bins --locked
cargo test --workspace --locked
