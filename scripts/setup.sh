#!/usr/bin/env bash
# Create .venv (once) and install deepclust with the TensorFlow and JAX backends (JAX's CPU build, so
# the JAX backend tests run rather than skip) and its demo, neural-voice, test, STOI and export extras into it.
# Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
.venv/bin/python -m pip install -q -e ".[tensorflow,jax,demo,neural,test,stoi,export]"

# Optional: PyTorch's CPU build, for the Keras torch backend tests (tests/test_backends.py skip without it).
# Installed only from a local CPU wheel (TORCH_WHEELS, default /opt/wheels), never resolved from PyPI, whose
# Linux default build pulls gigabytes of CUDA packages. Its small dependencies (sympy, networkx, jinja2, ...)
# come from PyPI as usual. Never fails the setup: without the wheel, or if the install fails, it is skipped.
TORCH_VERSION=2.13.0
TORCH_WHEELS=${TORCH_WHEELS:-/opt/wheels}
if ! .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('torch') != '$TORCH_VERSION+cpu')" 2>/dev/null; then
  tag=$(.venv/bin/python -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
  wheel=$(ls "$TORCH_WHEELS"/torch-"$TORCH_VERSION"+cpu-"$tag"-"$tag"-*.whl 2>/dev/null | head -n 1 || true)
  if [ -n "$wheel" ]; then
    .venv/bin/python -m pip install -q "$wheel" \
      || echo "setup.sh: optional torch install from $wheel failed; the torch backend tests will be skipped" >&2
  fi
fi

# apt_install PURPOSE TIP PACKAGE...: the system packages of an optional feature, installed only where this
# script runs as root with apt-get (a fresh CI or cloud machine), the package index refreshed if the first try
# fails; elsewhere TIP says how. Never fails the setup. DEEPCLUST_NO_SYSTEM_PACKAGES=1 skips them all.
apt_install() {
  local purpose=$1 tip=$2
  shift 2
  if [ "$(uname -s)" != Linux ] || [ -n "${DEEPCLUST_NO_SYSTEM_PACKAGES:-}" ]; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup.sh: installing $* (apt-get) $purpose" >&2
    { apt-get install -y -q "$@" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$@" >/dev/null 2>&1; }; } \
      || echo "setup.sh: could not install $*; without them: $tip" >&2
  else
    echo "setup.sh: tip: $tip" >&2
  fi
}

# Optional: tcmalloc, which deepclust preloads by itself (deepclust/allocator.py): training runs
# markedly faster on a CPU than under glibc's malloc (RESULTS.md, "Speed").
if ! .venv/bin/python -c "import sys; from deepclust.allocator import find_fast_allocator; sys.exit(find_fast_allocator() is None)"; then
  apt_install "for faster training" "install tcmalloc for faster CPU training (Debian/Ubuntu: sudo apt install \
libtcmalloc-minimal4; Fedora: sudo dnf install gperftools-libs); training works without, slower" libtcmalloc-minimal4
fi

# Optional: Flite and Festival, the speech synthesisers of `make-corpus --flite-share` and `--festival-share`
# (voices of real people for the built-in corpus; their tests skip without them).
if ! command -v flite >/dev/null; then
  apt_install "for make-corpus --flite-share" "install flite for make-corpus --flite-share (Debian/Ubuntu: sudo \
apt install flite; macOS: brew install flite)" flite
fi
if ! .venv/bin/python -c "from deepclust.corpus import festival; festival.require()" 2>/dev/null; then
  festival_packages=$(.venv/bin/python -c "from deepclust.corpus import festival; print(*festival.PACKAGES)")
  # shellcheck disable=SC2086  # one word per package
  apt_install "for make-corpus --festival-share" "install Festival and its voices for make-corpus \
--festival-share (Debian/Ubuntu: sudo apt install $festival_packages)" $festival_packages
fi
