"""``python -m vespo_theory.cli``: the same as the ``vespo`` console script."""

import sys

from vespo_theory.cli import main

sys.exit(main())
