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
    # rejax 0.1.3 unpacks 5 values from env.step; gymnax >= 1.0 returns 6 (split done), so the
    # check steps a gymnax env the way rejax does.
    rejax) echo 'import importlib.metadata as m, jax, rejax, gymnax; e, p = gymnax.make("Pendulum-v1"); o, s = e.reset(jax.random.key(0), p); r = e.step(jax.random.key(1), s, jax.numpy.zeros(1), p); assert len(r) == 5, ("gymnax", m.version("gymnax"), "env.step returns", len(r), "values; rejax needs 5"); print("rejax", m.version("rejax"), "jax", jax.__version__, "gymnax", m.version("gymnax"))' ;;
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
      # rejax only asks for gymnax>=0.0.9, so pip takes gymnax 1.x, whose env.step returns 6
      # values (terminated/truncated) where rejax 0.1.3 unpacks 5: pin the 0.0.x line here,
      # in rejax's own venv, away from the project (which needs gymnax 1.x).
      "$pip" install "rejax" "gymnax<1.0" "jax==$JAX_PIN" "jaxlib==$JAX_PIN" \
        || "$pip" install "rejax" "gymnax<1.0" || return 1 ;;
  esac
}

status=0
for peer in "${peers[@]}"; do
  venv="$VENVS/$peer"
  cmd="$(check_cmd "$peer")"
  if [ -z "$cmd" ]; then echo "unknown peer: $peer (sbx, sb3, rejax)"; status=1; continue; fi
  if [ -z "${FORCE:-}" ] && [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$cmd" >/dev/null 2>&1; then
    echo "[$peer] ok (existing): $("$venv/bin/python" -c "$cmd" 2>/dev/null | tail -1)"
    rm -f "$VENVS/$peer.FAILED"
    [ -f "$venv/FREEZE.txt" ] || "$venv/bin/pip" freeze >"$venv/FREEZE.txt" 2>/dev/null
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
