import sys

from vadmon.cli import main

sys.exit(main())
