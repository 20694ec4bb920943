"""``python -m vadmon.dashboard``: the standalone viewer and synthetic heartbeat feed."""

import sys

from vadmon.dashboard.app import main

sys.exit(main())
