#!/usr/bin/env bash
# Mutation testing of the SAC-family maths (issue 12): mutmut 2.x over rlstab_jax/stability/*.py
# and rlstab_jax/agents/sac/{losses,agent}.py, each file against ONLY the test files that
# exercise it (a full-suite run per mutant is hours on 2 cores). Not part of CI.
#
#   pip install -e ".[mutation]"          # mutmut<3
#   MUT_DIR=/tmp/mut_kl nice -n 10 bash scripts/mutation.sh rlstab_jax/stability/kl.py
#   (cd "$MUT_DIR" && mutmut results)   # survivors; `mutmut show ID` (not while a run is going)
#
# Give each FILE its own $MUT_DIR: mutmut 2 keeps ONE baseline time per cache and kills a
# mutant run after 10x that time, so a fast file's baseline would time out a slow file's tests.
# The source tree is copied to $MUT_DIR (mutmut 2 rewrites files in place, so the work tree
# is never touched) and mutmut's cache lives there: re-running the script re-tests only the
# mutants that survived or were not tested yet (a cached baseline is NOT re-run: run the
# changed test files once yourself first). Score = killed / (killed + survived).
#
# Each mutant runs in a child forked from a server that imported jax/flax/optax/pytest once
# (scripts/mutation_forkserver.py; MUT_FORKSERVER=0 runs a fresh `python -m pytest` instead),
# with --hypothesis-seed=0 so property tests draw the same examples for every mutant.
# Known mutmut 2 limit: a mutant on a line whose text repeats in the file (e.g. three
# `if cfg.critic_kind == "tqc":`) can end up "skipped" (never applied); check those by hand.
#
# After adding tests, re-test the survivors against the NEW tests only (same $MUT_DIR, so only
# survived/untested mutants run): the old tests are unchanged and already passed on them, so
#   MUT_TESTS="tests/agents/test_x.py -k 'new_a or new_b'" bash scripts/mutation.sh FILE
# gives the same verdict as the full mapping at a fraction of the cost.
#
# JAX's persistent compilation cache ($JAX_COMPILATION_CACHE_DIR, default $MUT_DIR/jaxcache,
# every program cached) is shared by all mutant runs: a mutant that leaves a test's traced
# program unchanged (a branch that test's config does not take, a host-side check) reuses the
# compiled program instead of recompiling it, so survivors cost tracing, not XLA compiles.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
work="${MUT_DIR:-/tmp/rlstab_mutation}"
py="${PYTHON:-python}"
mutmut="${MUTMUT:-$(dirname "$(command -v "$py")")/mutmut}"
mkdir -p "$work"
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$work/jaxcache}"
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=-1
# Fresh copy of source and tests each time; the cache (.mutmut-cache) survives.
rm -rf "$work/rlstab_jax" "$work/tests"
cp -r "$here/rlstab_jax" "$here/tests" "$here/pyproject.toml" "$work/"
find "$work" -name __pycache__ -prune -exec rm -rf {} +

tests_for() {  # the test files that exercise one source file
  case "$1" in
    # Fastest killers first (pytest -x stops at the first failure). The agent-level files
    # compile agent.update per test; test_sac_update.py (vmap/determinism) is left out: it
    # checks plumbing, not the maths, and doubles the cost of every surviving mutant.
    rlstab_jax/agents/sac/losses.py)
      echo "tests/agents/test_sac_targets.py tests/agents/test_sac_agent_switches.py" \
           "tests/agents/test_sac_switches.py" ;;
    rlstab_jax/agents/sac/agent.py)  # config/spec checks first (no compile), then by cost
      echo "tests/agents/test_sac_config.py tests/agents/test_sac_schedule.py" \
           "tests/agents/test_sac_agent_switches.py tests/agents/test_sac_switches.py" \
           "tests/agents/test_sac_targets.py tests/agents/test_sac_update.py" ;;
    rlstab_jax/stability/demos.py)
      echo "tests/stability/test_demos.py tests/train/test_demo_mix.py" ;;
    rlstab_jax/stability/*.py)
      echo "tests/stability/test_$(basename "$1")" ;;
    *) echo "no test mapping for $1" >&2; return 1 ;;
  esac
}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(rlstab_jax/stability/entropy.py rlstab_jax/stability/demos.py
           rlstab_jax/agents/sac/losses.py rlstab_jax/agents/sac/agent.py)
  for f in "$here"/rlstab_jax/stability/*.py; do
    case "$(basename "$f")" in __init__.py|entropy.py|demos.py) ;;
      *) targets+=("rlstab_jax/stability/$(basename "$f")") ;; esac
  done
fi
cd "$work"
# Fork server (MUT_FORKSERVER=0 to disable): jax/flax/optax/pytest imported once, one forked
# child per mutant runs pytest on the mutated tree (scripts/mutation_forkserver.py).
sock="$work/forkserver.sock"
if [ "${MUT_FORKSERVER:-1}" = 1 ]; then
  cp "$here/scripts/mutation_forkserver.py" "$work/"
  rm -f "$sock"
  PYTHONPATH="$work" JAX_PLATFORMS=cpu "$py" "$work/mutation_forkserver.py" serve "$sock" &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  for _ in $(seq 600); do [ -S "$sock" ] && break; sleep 0.1; done
  [ -S "$sock" ] || { echo "fork server did not start" >&2; exit 1; }
  pytest_cmd="$py -S $work/mutation_forkserver.py run $sock"
else
  pytest_cmd="env PYTHONPATH=$work JAX_PLATFORMS=cpu $py -m pytest"
fi
for t in "${targets[@]}"; do
  tests=""
  for f in $(tests_for "$t"); do [ -f "$f" ] && tests="$tests $f"; done
  tests="${MUT_TESTS:-$tests}"
  echo "=== $t  <-  $tests"
  PYTHONPATH="$work" JAX_PLATFORMS=cpu "$mutmut" run --paths-to-mutate "$t" --no-progress \
    --runner "$pytest_cmd -x -q -p no:cacheprovider --hypothesis-seed=0 -m 'not slow' $tests" \
    || true   # mutmut exits non-zero when mutants survive
done
"$mutmut" results
