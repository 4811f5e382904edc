"""`python -m trainers.cli`: the command line, as `torchrun -m trainers.cli` starts it."""

import sys

from trainers.cli import main

sys.exit(main())
