"""`python -m nt2sync`."""

import sys

from nt2sync.cli import main

sys.exit(main())
