#!/usr/bin/env python3
"""Start the vadmon monitor: ``python run_monitor.py --config configs/x.yaml`` or ``--demo``.

Same as ``vadmon run``.
"""

import sys

from vadmon.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
