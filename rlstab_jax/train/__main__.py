import sys

from rlstab_jax.train.cli import main

sys.exit(main())
