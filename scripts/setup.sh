#!/usr/bin/env bash
# Installs everything tame needs that cargo does not: libtorch for tch 0.26 (PyTorch 2.13.0
# from PyPI, CPU-only subset), the Python `tensorboard` package used by one integration
# test, and `rliable` (Agarwal et al. 2021) that tests/stats_rliable.rs checks tame's
# statistics against, into a project-local virtualenv. Idempotent: a second run does nothing.
#
# Why this subset: PyPI has no CPU-only torch wheel; the manylinux wheel is CUDA-linked, but
# libtorch_cpu.so only needs libcudart and libcupti at load time (../shared/notes/libtorch.md).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
STAMP=$VENV/.tame-setup-v2
TORCH_VERSION=2.13.0

if [ -f "$STAMP" ] && [ -e .libtorch/lib/libtorch_cpu.so ]; then
  exit 0
fi

PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || { echo "setup: python3 not found; install Python 3.9+ with venv" >&2; exit 1; }

echo "setup: creating $VENV and installing libtorch $TORCH_VERSION (first run only, ~1-2 min)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# tensorboard first: pip's resolver would otherwise complain about torch's skipped deps.
"$VENV/bin/python" -m pip install -q tensorboard
# rliable 1.2 needs arch < 8, and arch 7 does not import with pandas 3 (deprecate_kwarg).
"$VENV/bin/python" -m pip install -q rliable==1.2.0 "pandas<3"
"$VENV/bin/python" -m pip install -q --no-deps \
  "torch==$TORCH_VERSION" nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85

SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[ -e "$SITE/torch/lib/libtorch_cpu.so" ] || { echo "setup: torch wheel has no lib/libtorch_cpu.so under $SITE/torch" >&2; exit 1; }
# A fixed path that .cargo/config.toml can name, whatever the Python version.
ln -sfn "$SITE/torch" .libtorch
touch "$STAMP"
echo "setup: libtorch ready at .libtorch -> $SITE/torch" >&2
