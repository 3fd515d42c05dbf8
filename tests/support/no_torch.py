"""Python code run in a subprocess where ``import torch`` fails, as on an install without the ``[train]`` extra.

A ``sys.meta_path`` finder placed first refuses ``torch`` and its submodules with the error a missing package gives
(``ModuleNotFoundError``), whatever the test environment has installed.
"""

from __future__ import annotations

import subprocess
import sys

BLOCK_TORCH = """
import sys


class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None


sys.meta_path.insert(0, _NoTorch())
"""


def run_without_torch(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (after the blocker) with ``args`` as ``sys.argv[1:]``; the environment is the test's own."""
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + code, *args], capture_output=True, text=True, timeout=timeout
    )
