# The two set-up commands from the README. Each installs what it needs first (libtorch into
# .venv via scripts/setup.sh; a no-op once done), then builds with cargo.
.PHONY: run test setup bench

setup:
	@bash scripts/setup.sh

# The main job with built-in defaults: SAC, tau auto, Pendulum, 10,000 steps.
run: setup
	cargo run --release --bin tame -- train

# Every test: unit, integration and doc tests of all crates, in release (learning tests train).
test: setup
	cargo test --release --workspace

# Speed figures with the machine's reference rates (sgemm for SAC), as in the README.
bench: setup
	cargo build --release --bin tame
	target/release/tame env bench
	target/release/tame bench es
	target/release/tame bench sac
	target/release/tame bench tb
	target/release/tame bench render
	target/release/tame bench stats
