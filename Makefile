# The two set-up commands from the README. Each installs what it needs first (libtorch into
# .venv via scripts/setup.sh; a no-op once done), then builds with cargo.
.PHONY: run test setup bench

setup:
	@bash scripts/setup.sh

# The main job with built-in defaults.
run: setup
	cargo run --release --bin tame -- env list

# Every test: unit, integration and doc tests of all crates, in release (learning tests train).
test: setup
	cargo test --release --workspace

bench: setup
	cargo run --release --bin tame -- env bench
