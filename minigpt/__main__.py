"""`python -m minigpt` is the same as the `minigpt` command."""

import sys

from minigpt.cli import main

sys.exit(main())
