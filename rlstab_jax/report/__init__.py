"""Report a finished run: ``python -m rlstab_jax.report RUN_DIR`` writes report.md + PNGs.

``write_report(run_dir)`` (the command), ``load_run`` (config + metric rows as arrays),
``judge`` (collapse verdict and stability score) and ``figures`` (matplotlib figures of the
stability telemetry, reused by the notebooks).
"""

from rlstab_jax.report import figures
from rlstab_jax.report.runlog import RunLog, load_run
from rlstab_jax.report.verdict import Verdict, judge
from rlstab_jax.report.writer import write_report

__all__ = ["RunLog", "Verdict", "figures", "judge", "load_run", "write_report"]
