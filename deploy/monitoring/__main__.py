"""``python -m deploy.monitoring``: write the generated monitoring files (see the package)."""

from __future__ import annotations

import sys

from .generate import write_all

if __name__ == "__main__":
    for path in write_all():
        print(f"wrote {path}")
    sys.exit(0)
