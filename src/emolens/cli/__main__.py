"""`python -m emolens.cli`, as the `emolens` command."""

import sys

from emolens.cli import main

sys.exit(main())
