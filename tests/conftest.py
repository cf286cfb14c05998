import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
# Tests never write into the checkout's own data folder.
os.environ.setdefault(
    "CLAIMRADAR_HOME", str(Path(os.environ.get("TMPDIR", "/tmp")) / "claimradar-test-home")
)
