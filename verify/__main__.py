"""``python -m verify crosscheck|audit|report``."""

import sys

from verify.cli import main

sys.exit(main())
