"""Review a sweep from the command line; the tables, plots and report live in rnnexp.sweeps.report.

python -m rnnexp.review logs/train/multiruns/<time> --out report.html     (or --out report.png)
"""

import sys

from rnnexp.sweeps.report import main

if __name__ == "__main__":
    sys.exit(main())
