"""`python -m tracker.cli`: the `newsdesk` command."""

import sys

from tracker.cli import main

sys.exit(main())
