"""`python -m hardwire`: the same command line as `hardwire`."""
import sys

from hardwire.cli.main import main

sys.exit(main())
