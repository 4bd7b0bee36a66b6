"""Replay bytes per row, flat (obs + next_obs stored) vs compact (one frame per row), issue 14.

    python bench/replay_bytes.py            # table on stdout, bench/results/replay_bytes.json

Bytes come from the actual replay state pytree of a real session (``build_session`` ->
``jax.eval_shape`` of the driver's init, no allocation): every leaf of ``state.replay``
(frames, actions, rewards, flags, side store, indices) divided by the rows it holds
(``replay.capacity`` per seed). Presets at their own capacity and ``env.n_envs``:
CarRacing-v3 (96x96x3 uint8, gymnasium), RacerPixels-v0 (48x48x3 uint8, 3 stacked frames),
and Pendulum (vector, where ``replay.layout=auto`` keeps the flat replay).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

CASES = [
    ("CarRacing-v3 96x96x3", "sac/carracing", []),
    ("RacerPixels-v0 48x48x3 x3 frames", "sac/racer_pixels", []),
    ("Pendulum-v1 (vector, [3])", "sac/pendulum", ["env.backend=gymnax"]),
]


def row_bytes(preset: str, overrides: list[str], compact: str) -> dict:
    import jax

    from rlstab_jax.config.loader import load_config
    from rlstab_jax.train.memory import tree_bytes
    from rlstab_jax.train.session import build_session

    cfg = load_config(preset, [*overrides, f"replay.layout={compact}", "train.seeds=1",
                               "log.progress=false", "checkpoint.enabled=false"])
    sess = build_session(cfg)
    replay = sess.abstract_state().replay
    total = tree_bytes(replay)
    out = {"capacity": cfg.replay.capacity, "n_envs": cfg.env.n_envs,
           "obs_shape": list(sess.spec.obs_shape), "obs_dtype": sess.spec.obs_dtype,
           "layout": "compact" if getattr(sess.driver.replay, "compact", False) else "flat",
           "replay_bytes": total, "bytes_per_row": total / cfg.replay.capacity,
           "leaves": {"/".join(str(getattr(k, "name", k)) for k in path): tree_bytes(leaf)
                      for path, leaf in jax.tree_util.tree_leaves_with_path(replay)}}
    if sess.runner is not None:
        sess.runner.venv.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE / "results" / "replay_bytes.json"))
    args = ap.parse_args()
    result = {"date": _dt.datetime.now().isoformat(timespec="seconds"), "rows": []}
    lines = ["| observation | preset | capacity | flat bytes/row | compact bytes/row | ratio "
             "| `auto` picks |", "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for name, preset, ov in CASES:
        flat = row_bytes(preset, ov, "flat")
        comp = row_bytes(preset, ov, "compact")
        auto = row_bytes(preset, ov, "auto")["layout"]
        result["rows"].append({"name": name, "preset": preset, "flat": flat, "compact": comp,
                               "auto": auto})
        lines.append(f"| {name} | `{preset}` | {flat['capacity']} | "
                     f"{flat['bytes_per_row']:,.0f} | {comp['bytes_per_row']:,.0f} | "
                     f"{flat['bytes_per_row'] / comp['bytes_per_row']:.2f} | {auto} |")
    table = "\n".join(lines)
    result["table"] = table
    print(table)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
