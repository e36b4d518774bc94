"""`python -m emolens` runs the CLI."""

import sys

from emolens.cli import main

sys.exit(main())
