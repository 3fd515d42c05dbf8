import sys

from audioclas.cli import main

sys.exit(main())
