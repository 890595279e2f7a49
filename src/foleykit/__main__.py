"""``python -m foleykit`` == ``foleykit``."""

import sys

from foleykit.cli import main

sys.exit(main())
