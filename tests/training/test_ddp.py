"""Two CPU processes (gloo) train the tiny model with DDP and end with identical weights."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world_size: int, port: int, cfg, out: str) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    from das_core.training.trainer import train

    result = train(cfg, device="cpu", progress=False)
    save_file({k: v.contiguous() for k, v in result.model.state_dict().items()}, f"{out}/rank{rank}.safetensors")
    dist.destroy_process_group()


def test_two_process_ddp_ends_with_identical_weights_on_both_ranks(tiny_data, make_tiny_config, tmp_path: Path):
    cfg = make_tiny_config(tiny_data, tmp_path / "run", max_iters=3, ckpt_interval=100)
    mp.spawn(_worker, args=(2, _free_port(), cfg, str(tmp_path)), nprocs=2, join=True)
    w0 = load_file(str(tmp_path / "rank0.safetensors"))
    w1 = load_file(str(tmp_path / "rank1.safetensors"))
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    # rank 0 saved every rank's RNG state; the run folder is complete
    initial = torch.load(tmp_path / "run" / "last.train.pt", weights_only=True)
    assert initial["iteration"] == 3 and len(initial["rng"]) == 2
    assert (tmp_path / "run" / "final.safetensors").is_file()
