"""Seeded random models for tests that need some model but not a trained one.

The same seed always gives the same weights, so a test that computes its expected values from
the model (or from the checkpoint it wrote) is reproducible. torch is imported only inside the
helpers that build torch modules: ``random_arrays`` (used by conftest) stays torch-free.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vadbridge.model.checkpoint import export_npz, make_meta
from vadbridge.model.config import MLPConfig
from vadbridge.model.engine import parameter_layout

if TYPE_CHECKING:
    import pytest

    from vadbridge.model.network import VADBlendshapeMLP

# How far apart two float32 evaluation paths of the same network may put an output weight: a
# batch vs a single row, different batch sizes, ``forward`` vs ``forward_into``, a slice of a
# larger buffer vs a fresh array, another OpenBLAS kernel or numpy SIMD level (another CPU). The
# matmuls sum 256- and 512-term dot products in an order that depends on all of these, so results
# differ in the last bits, and each LayerNorm rescales those differences for the next layer.
# Measured spread (max abs difference over 1024 random VADs x 52 outputs; batch sizes 1 to 1024,
# OpenBLAS kernels Prescott, Nehalem, Sandybridge, Haswell, SkylakeX and Zen, 1 and 2 threads,
# numpy SIMD from its baseline to AVX-512): 1.0e-6 for the bundled model, 1.4e-6 for the
# torch-initialised ``seeded_model``s, 2.4e-7 for the small LUT test model, 7.5e-6 for
# ``random_arrays`` weights (N(0, 0.5), pre-clip outputs up to 11; only compared one row against
# one row, in the daemon tests). So 1e-6 (8 ulps of 1.0) is too tight; 1e-5 bounds them all, while
# the bugs these comparisons exist to catch (a wrong or stale row, a missing LayerNorm affine or
# clamp, an output not written) move weights by 1e-3 or more. Weights lie in [0, 1]: use it as
# ``atol`` with ``rtol=0``. Never for the same computation run twice on the same input and shape,
# for copies, or for values written verbatim: those stay exact.
FLOAT32_PATH_ATOL = 1e-5


def seeded_model(
    config: MLPConfig | None = None, seed: int = 0, *, random_layer_norm: bool = True
) -> VADBlendshapeMLP:
    """torch's default initialisation under ``seed``, in eval mode. With ``random_layer_norm``
    the LayerNorm affine parameters are random too (not the 1/0 defaults), so a forward pass
    that ignored them would show."""
    import torch
    from torch import nn

    from vadbridge.model.network import VADBlendshapeMLP

    torch.manual_seed(seed)
    model = VADBlendshapeMLP(config)
    if random_layer_norm:
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, nn.LayerNorm):
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.uniform_(-0.3, 0.3)
    return model.eval()


def seeded_checkpoint(path: Path, seed: int, meta: Mapping[str, Any] | None = None) -> Path:
    """An ``.npz`` of the full-size model with torch's default initialisation under ``seed``
    (LayerNorm 1/0); ``meta`` defaults to ``make_meta()``."""
    model = seeded_model(seed=seed, random_layer_norm=False)
    return export_npz(path, model, make_meta() if meta is None else meta)


def random_arrays(config: MLPConfig, seed: int) -> dict[str, np.ndarray]:
    """A state dict of N(0, 0.5) float32 arrays in ``parameter_layout(config)``, without torch."""
    rng = np.random.default_rng(seed)
    return {
        spec.key: rng.normal(0.0, 0.5, spec.shape).astype(np.float32)
        for spec in parameter_layout(config)
    }


# The vadbridge CLI with every import of torch failing, as on a machine without it.
_CLI_WITHOUT_TORCH = """
import sys

class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"torch is blocked in this test ({name})", name=name)
        return None

sys.meta_path.insert(0, BlockTorch())
from vadbridge.commands import main

sys.exit(main(sys.argv[1:]))
"""


def cli_script_without(package: str) -> str:
    """The script above with ``package`` blocked instead of torch (e.g. ``aiohttp``, the web
    extra's), for ``python -c SCRIPT ARGV``."""
    return _CLI_WITHOUT_TORCH.replace("torch", package).replace("Torch", package.title())


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``vadbridge ARGV`` in-process: the exit status (argparse errors exit via SystemExit, ours
    return 2), stdout and stderr."""
    from vadbridge.commands import main

    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_cli_without_torch(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``vadbridge ARGV`` in a subprocess where ``import torch`` fails."""
    return subprocess.run(
        [sys.executable, "-c", _CLI_WITHOUT_TORCH, *argv],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
