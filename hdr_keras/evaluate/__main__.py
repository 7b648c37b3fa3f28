"""``python -m hdr_keras.evaluate``: the ``evaluate`` command."""

import sys

from hdr_keras.evaluate.command import main

sys.exit(main())
