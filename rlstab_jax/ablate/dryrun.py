"""``--dry-run``: validate a grid and compile every program once, without training.

Each program's chunk and evaluation are lowered against the abstract state
(``jax.eval_shape``) and compiled ahead of time, so a grid file that loads here will not fail
later for shape or config reasons; the compile count and seconds per program are printed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import jax

from rlstab_jax.ablate.cells import CompileCounter, _session, cell_config, plan
from rlstab_jax.ablate.spec import GridSpec


def dry_run(spec: GridSpec) -> Iterator[str]:
    """Yield one line per program: variants, batch size, compiles and compile seconds."""
    from rlstab_jax.train.loop import _eval_keys

    cells = plan(spec)
    yield (f"{spec.name}: {len(spec.variants)} variants, {len(spec.programs)} programs, "
           f"{len(spec.seeds)} seeds, {len(cells)} cells")
    seen = set()
    with tempfile.TemporaryDirectory() as tmp:
        for cell in cells:
            if cell.program.index in seen:
                continue
            seen.add(cell.program.index)
            cfg = cell_config(cell, Path(tmp) / cell.program.slug)
            with CompileCounter() as cc:
                sess = _session(cell, cfg)
                state = sess.abstract_state()
                if hasattr(sess.chunk, "lower"):
                    sess.chunk.lower(state, sess.hparams).compile()
                if hasattr(sess.evaluate, "lower"):
                    sess.evaluate.lower(state, _eval_keys(sess.member_seeds, 0),
                                        sess.hparams).compile()
            yield (f"  {cell.program.slug}: variants {[v.name for v in cell.program.variants]}"
                   f", batch {len(cell.members)} members, {cc.count} compiles, "
                   f"{cc.seconds:.1f}s compile, backend {jax.default_backend()}")
