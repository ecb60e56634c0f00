#!/usr/bin/env bash
# Installs everything tame needs that cargo does not: libtorch for tch 0.26 (PyTorch 2.13.0
# from PyPI, CPU-only subset), the Python `tensorboard` package used by one integration
# test, and `rliable` (Agarwal et al. 2021) that tests/stats_rliable.rs checks tame's
# statistics against, into a project-local virtualenv; and redis-server (distributed sweeps
# and their tests, tests/cluster.rs) from the system's packages when it is missing; and
# MuJoCo 3.17.0's C library with Gymnasium 1.4.0's MuJoCo model files into .mujoco/ (the
# MuJoCo envs, envs/src/mujoco/). Idempotent: a second run does nothing.
#
# Why this subset: PyPI has no CPU-only torch wheel; the manylinux wheel is CUDA-linked, but
# libtorch_cpu.so only needs libcudart and libcupti at load time (../shared/notes/libtorch.md).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
STAMP=$VENV/.tame-setup-v2
TORCH_VERSION=2.13.0

# Redis >= 6.2 (streams, consumer groups, XAUTOCLAIM); Debian 12's package is 7.0. The PyPI
# redis-stack wheel is no alternative there: its binary needs libssl 1.1.
if ! redis-server --version >/dev/null 2>&1; then
  if command -v apt-get >/dev/null; then
    echo "setup: installing redis-server (apt-get)" >&2
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q redis-server >&2
  else
    echo "setup: redis-server not found and no apt-get; install Redis >= 6.2 (tests/cluster.rs needs it)" >&2
    exit 1
  fi
fi

PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || { echo "setup: python3 not found; install Python 3.9+ with venv" >&2; exit 1; }

# MuJoCo: libmujoco.so.3.17.0 from the PyPI wheel `mujoco` (which ships it; Apache-2.0) and
# the v5 tasks' XML models from the `gymnasium` wheel (MIT), unpacked from the wheels rather
# than installed, so that the Python packages stay out of the way. .cargo/config.toml points
# mujoco-rs (MUJOCO_DYNAMIC_LINK_DIR) and the binaries' rpath at .mujoco/lib, whose files are
# named libmujoco.so (for the linker) and libmujoco.so.3.17.0 (the SONAME, for the loader).
MUJOCO_VERSION=3.17.0
GYMNASIUM_VERSION=1.4.0
MJ=.mujoco
MJ_STAMP=$MJ/.tame-setup-mujoco-$MUJOCO_VERSION-gymnasium-$GYMNASIUM_VERSION-v1
if ! { [ -f "$MJ_STAMP" ] && [ -e "$MJ/lib/libmujoco.so.$MUJOCO_VERSION" ] && [ -e "$MJ/assets/half_cheetah.xml" ]; }; then
  echo "setup: installing MuJoCo $MUJOCO_VERSION and Gymnasium $GYMNASIUM_VERSION's models into $MJ (first run only, ~30 MB)" >&2
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  WHEELS=$(mktemp -d)
  trap 'rm -rf "$WHEELS"' EXIT
  "$VENV/bin/python" -m pip download -q --no-deps --only-binary=:all: -d "$WHEELS" \
    "mujoco==$MUJOCO_VERSION" "gymnasium==$GYMNASIUM_VERSION"
  rm -rf "$MJ.new" && mkdir -p "$MJ.new/lib" "$MJ.new/assets" "$MJ.new/licenses"
  "$VENV/bin/python" - "$WHEELS" "$MJ.new" "$MUJOCO_VERSION" <<'PYEOF'
import glob, os, sys, zipfile
wheels, out, version = sys.argv[1:]
def one(pattern):
    found = glob.glob(os.path.join(wheels, pattern))
    if len(found) != 1:
        sys.exit(f"setup: expected one wheel {pattern} in {wheels}, found {found}")
    return zipfile.ZipFile(found[0])
def copy(z, member, dest):
    with z.open(member) as src, open(dest, "wb") as dst:
        dst.write(src.read())
mj = one("mujoco-*.whl")
lib = f"mujoco/libmujoco.so.{version}"
if lib not in mj.namelist():
    sys.exit(f"setup: the mujoco wheel has no {lib}")
copy(mj, lib, os.path.join(out, "lib", f"libmujoco.so.{version}"))
for m in mj.namelist():
    if m.endswith("/LICENSE") or m.endswith("LICENSES_THIRD_PARTY.md"):
        copy(mj, m, os.path.join(out, "licenses", "mujoco-" + os.path.basename(m)))
gym = one("gymnasium-*.whl")
assets = [m for m in gym.namelist() if m.startswith("gymnasium/envs/mujoco/assets/") and m.endswith(".xml")]
if not assets:
    sys.exit("setup: the gymnasium wheel has no gymnasium/envs/mujoco/assets/*.xml")
for m in assets:
    copy(gym, m, os.path.join(out, "assets", os.path.basename(m)))
for m in gym.namelist():
    if m.endswith("/LICENSE"):
        copy(gym, m, os.path.join(out, "licenses", "gymnasium-LICENSE"))
PYEOF
  ln -sfn "libmujoco.so.$MUJOCO_VERSION" "$MJ.new/lib/libmujoco.so"
  rm -rf "$MJ" && mv "$MJ.new" "$MJ"
  touch "$MJ_STAMP"
  echo "setup: MuJoCo ready in $MJ/lib, models in $MJ/assets" >&2
fi

if [ -f "$STAMP" ] && [ -e .libtorch/lib/libtorch_cpu.so ]; then
  exit 0
fi

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
