"""``python -m adaptivemix`` is the ``adaptivemix`` command."""

import sys

from adaptivemix.cli import main

sys.exit(main())
