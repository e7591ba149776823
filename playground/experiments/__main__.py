"""python -m playground.experiments run presets/NAME.json [...]: see playground.experiments.cli."""

import sys

from playground.experiments.cli import main

if __name__ == "__main__":
    sys.exit(main())
