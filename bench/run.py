"""``make bench``: run every bench/bench_*.py in turn and print their tables.

Usage: python bench/run.py [NAME_SUBSTRING...]
"""

import subprocess
import sys
import time
from pathlib import Path

here = Path(__file__).resolve().parent
wanted = sys.argv[1:]
failed = []
for script in sorted(here.glob("bench_*.py")):
    if wanted and not any(w in script.stem for w in wanted):
        continue
    print(f"\n=== {script.stem} ===", flush=True)
    t = time.time()
    rc = subprocess.call([sys.executable, str(script)])
    print(
        f"--- {script.stem}: {'ok' if rc == 0 else f'FAILED ({rc})'} in {time.time() - t:.0f} s", flush=True
    )
    if rc:
        failed.append(script.stem)
sys.exit(1 if failed else 0)
