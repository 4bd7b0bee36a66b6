#!/usr/bin/env bash
# Create one virtual environment per peer library under bench/.venvs/<peer>.
#
#     bash bench/setup_peers.sh            # all peers
#     bash bench/setup_peers.sh sbx rejax  # some peers
#     FORCE=1 bash bench/setup_peers.sh    # rebuild even if a venv already works
#
# Idempotent: a venv whose import check passes is left alone. torch is installed as
# `torch==2.13.0` FIRST in the sb3/sbx venvs: on this machine that takes the CPU wheel from local
# disk; an unpinned torch (pulled in by stable-baselines3) would download a multi-GB CUDA build.
# JAX peers get jax/jaxlib pinned to the project's version when pip can resolve it, so both sides
# of the comparison run the same XLA; if the pin conflicts, pip resolves freely and the
# installed version is recorded in bench/.venvs/<peer>/INSTALL.log and in the bench results.
# A peer that cannot be installed leaves bench/.venvs/<peer>.FAILED with pip's error.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENVS="$HERE/.venvs"
PY="${PYTHON:-python3}"
JAX_PIN="${JAX_PIN:-$("$HERE/../../venv/bin/python" -c 'import jax; print(jax.__version__)' 2>/dev/null || echo 0.10.2)}"
mkdir -p "$VENVS"

peers=("$@")
[ ${#peers[@]} -eq 0 ] && peers=(sbx sb3 rejax)

check_cmd() {
  case "$1" in
    sbx) echo 'import sbx, torch, gymnasium, jax; print("sbx", sbx.__version__, "jax", jax.__version__, "torch", torch.__version__)' ;;
    sb3) echo 'import stable_baselines3 as s, torch, gymnasium; print("sb3", s.__version__, "torch", torch.__version__)' ;;
    rejax) echo 'import rejax, jax, gymnax; print("rejax", getattr(rejax, "__version__", "?"), "jax", jax.__version__, "gymnax", getattr(gymnax, "__version__", "?"))' ;;
  esac
}

install_peer() {
  local peer="$1" venv="$VENVS/$1" pip="$VENVS/$1/bin/pip"
  "$PY" -m venv "$venv" || return 1
  "$pip" install -q --upgrade pip wheel || return 1
  case "$peer" in
    sbx)
      "$pip" install torch==2.13.0 || return 1
      "$pip" install "sbx-rl" "jax==$JAX_PIN" "jaxlib==$JAX_PIN" \
        || "$pip" install "sbx-rl" || return 1 ;;
    sb3)
      "$pip" install torch==2.13.0 || return 1
      "$pip" install "stable-baselines3" "gymnasium" || return 1 ;;
    rejax)
      # rejax pins old gymnax/jax releases; let pip resolve them here, away from the project.
      "$pip" install "rejax" || return 1 ;;
  esac
}

status=0
for peer in "${peers[@]}"; do
  venv="$VENVS/$peer"
  cmd="$(check_cmd "$peer")"
  if [ -z "$cmd" ]; then echo "unknown peer: $peer (sbx, sb3, rejax)"; status=1; continue; fi
  if [ -z "${FORCE:-}" ] && [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$cmd" >/dev/null 2>&1; then
    echo "[$peer] ok (existing): $("$venv/bin/python" -c "$cmd" 2>/dev/null | tail -1)"
    continue
  fi
  rm -rf "$venv" "$VENVS/$peer.FAILED"
  echo "[$peer] installing into $venv (log: $venv.log)"
  if install_peer "$peer" >"$venv.log" 2>&1 && "$venv/bin/python" -c "$cmd" >>"$venv.log" 2>&1; then
    mv "$venv.log" "$venv/INSTALL.log"
    "$venv/bin/pip" freeze >"$venv/FREEZE.txt" 2>/dev/null
    echo "[$peer] ok: $("$venv/bin/python" -c "$cmd" 2>/dev/null | tail -1)"
  else
    cp "$venv.log" "$VENVS/$peer.FAILED"
    echo "[$peer] FAILED; last lines of $VENVS/$peer.FAILED:"
    tail -n 15 "$VENVS/$peer.FAILED" | sed 's/^/    /'
    status=1
  fi
done
exit $status
