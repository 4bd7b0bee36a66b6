import sys

from rlstab_jax.report.cli import main

sys.exit(main())
