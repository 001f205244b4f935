"""Experiment, not part of das: horizontal-flip test-time augmentation on the real development set (issue 17).

Wraps the estimator's backend so that every padded network input runs as [x, flip(x)], maps the flipped
half's cells back (cell j <-> w-1-j on each level), swaps left/right joints (the skeleton's flip permutation),
negates their u offsets and averages the two halves, then runs training/score_realdata.py unchanged:

  python docs/results/realism/flip_tta/flip_tta_experiment.py mean --out /tmp/flip/out1 --no-sheet   # scores averaged too
  python docs/results/realism/flip_tta/flip_tta_experiment.py keep --out /tmp/flip/out2 --no-sheet   # original scores kept

(the first argument is the mode; the rest go to score_realdata.py). Flipping the whole padded tensor moves the
padding to the left; the cell-centre mapping is exact where the padded width is a multiple of the level's stride.
"""

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[4]
sys.path[:0] = [str(ROOT), str(ROOT / "training")]

from das_core.engine import estimator as E  # noqa: E402
from das_core.model.outputs import DenseOutputs  # noqa: E402
from das_core.skeletons import get_skeleton  # noqa: E402

MODE = sys.argv.pop(1)
assert MODE in ("mean", "keep"), "first argument: mean (average the scores too) or keep (the original scores)"
_init = E.Estimator.__init__


def _flip_index(sizes: list[tuple[int, int]], device: torch.device) -> torch.Tensor:
    idx, o = [], 0
    for h, w in sizes:
        idx.append(torch.arange(h * w, device=device).reshape(h, w).flip(1).reshape(-1) + o)
        o += h * w
    return torch.cat(idx)


def _patched_init(self, cfg, backend, **kw):
    _init(self, cfg, backend, **kw)
    perm = torch.tensor(get_skeleton(cfg.skeleton).flip_permutation())
    run = backend.run

    def flip_run(x):
        d = run(torch.cat([x, x.flip(-1)]))
        b = x.shape[0]
        _, _, sizes = self._grid(x.shape[-2], x.shape[-1])
        idx = _flip_index(sizes, x.device)
        a = DenseOutputs(*(t[:b] for t in d))
        f = DenseOutputs(*(t[b:][:, idx] for t in d))
        fo = f.offsets[:, :, perm].clone()
        fo[..., 0] = -fo[..., 0]
        scores = a.scores if MODE == "keep" else 0.5 * (a.scores + f.scores)
        return DenseOutputs(scores, 0.5 * (a.root_depth + f.root_depth), 0.5 * (a.offsets + fo),
                            0.5 * (a.sigma + f.sigma[:, :, perm]))

    backend.run = flip_run


E.Estimator.__init__ = _patched_init
import score_realdata  # noqa: E402

sys.exit(score_realdata.main(sys.argv[1:]))
