#!/usr/bin/env bash
# README's Quick start. Each job sets itself up: it creates (or reuses) a virtual environment
# in .venv, installs t2t_lite into it when setup.py changed since the last install, then runs.
#
#   bash scripts/quickstart.sh demo   # generate data, train transformer_tiny on
#                                     # algorithmic_reverse_binary40, evaluate, print accuracy
#   bash scripts/quickstart.sh test   # install with the test extras and run pytest
#
# Extra arguments go to t2t-trainer (demo) or pytest (test). Environment: PYTHON (the
# interpreter to build the venv with), T2T_VENV (venv folder), T2T_WORK_DIR (the one folder the
# demo keeps its data, tmp and train dirs in; default ./t2t_work).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${T2T_VENV:-$ROOT/.venv}"
JOB="${1:-demo}"
[ $# -gt 0 ] && shift

die() { echo "quickstart: error: $*" >&2; exit 2; }

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11 python3.10 python; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

# ensure_installed EXTRAS: a venv with t2t_lite (editable) and EXTRAS ("" or "test").
ensure_installed() {
  local extras="$1" spec="$ROOT" stamp digest
  if [ ! -x "$VENV/bin/python" ]; then
    local py; py="$(find_python)" || die "Python 3.10 or newer is needed (set PYTHON=/path/to/python3)."
    echo "quickstart: creating virtual environment $VENV with $py"
    "$py" -m venv "$VENV" || die "could not create a virtual environment in $VENV (on Debian/Ubuntu: apt-get install python3-venv)."
  fi
  [ -n "$extras" ] && spec="$ROOT[$extras]"
  digest="$(cat "$ROOT/setup.py" "$ROOT/t2t_lite/__init__.py" | "$VENV/bin/python" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:16])')"
  stamp="$VENV/.t2t_lite-installed-${digest}-${extras:-base}"
  if [ ! -f "$stamp" ] || [ ! -f "$VENV/bin/t2t-trainer" ]; then
    echo "quickstart: installing t2t_lite${extras:+ with [$extras]} into $VENV (first run: a few minutes)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e "$spec" \
      || die "pip install failed (see above)."
    touch "$stamp"
  fi
}

export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"

case "$JOB" in
  demo)
    ensure_installed ""
    WORK="${T2T_WORK_DIR:-$ROOT/t2t_work}"
    PROBLEM=algorithmic_reverse_binary40
    for arg in "$@"; do  # a --problem given here names the output dir too
      case "$arg" in --problem=*) PROBLEM="${arg#--problem=}" ;; esac
    done
    exec "$VENV/bin/t2t-trainer" \
      --generate_data \
      --problem="$PROBLEM" \
      --model=transformer \
      --hparams_set=transformer_tiny \
      --data_dir="$WORK/data" \
      --tmp_dir="$WORK/tmp" \
      --output_dir="$WORK/train/$PROBLEM-transformer_tiny" \
      --train_steps=1000 \
      --local_eval_frequency=1000 \
      --eval_steps=-1 \
      "$@"
    ;;
  test)
    ensure_installed "test"
    cd "$ROOT"
    exec "$VENV/bin/python" -m pytest "$ROOT/tests" -n 2 "$@"
    ;;
  *)
    die "unknown job '$JOB'; use 'demo' (train and evaluate) or 'test' (run the tests)."
    ;;
esac
