"""`python -m recordings ...`"""

import sys

from .cli import main

sys.exit(main())
