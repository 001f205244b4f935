"""The training loop: schedule, parameter groups, batching, exact resume, end to end (tiny CPU runs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from das_core import cli
from das_core.config import OptimConfig
from das_core.training.batching import EpochBatches, RunBatches
from das_core.training.trainer import NonFiniteLossError, lr_factor, param_groups, train

# ---------------------------------------------------------------- schedule and optimiser (DAS_SPEC §8)


def test_lr_warms_up_linearly_from_one_third_then_drops_tenfold_at_the_milestones():
    cfg = OptimConfig(warmup_iters=250, warmup_ratio=1 / 3, schedule="step", step_milestones=(16 / 22, 20 / 22))
    assert lr_factor(0, 2200, cfg) == pytest.approx(1 / 3)
    assert lr_factor(125, 2200, cfg) == pytest.approx(2 / 3)
    assert lr_factor(250, 2200, cfg) == pytest.approx(1.0)
    assert lr_factor(1599, 2200, cfg) == pytest.approx(1.0)
    assert lr_factor(1600, 2200, cfg) == pytest.approx(0.1)
    assert lr_factor(2000, 2200, cfg) == pytest.approx(0.01)


def test_cosine_schedule_falls_to_zero_at_the_end():
    cfg = OptimConfig(warmup_iters=0, schedule="cosine")
    assert lr_factor(0, 100, cfg) == pytest.approx(1.0)
    assert lr_factor(50, 100, cfg) == pytest.approx(0.5)
    assert lr_factor(100, 100, cfg) == pytest.approx(0.0, abs=1e-12)


def test_biases_get_double_lr_without_decay_and_norms_no_decay():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.GroupNorm(2, 8), nn.Linear(8, 2))
    net[0].weight.requires_grad_(False)  # frozen parameters are left out
    groups = {g["name"]: g for g in param_groups([net], OptimConfig(lr=0.01, weight_decay=1e-4))}
    assert groups["weights"]["params"] == [net[3].weight]
    assert groups["weights"]["lr"] == 0.01 and groups["weights"]["weight_decay"] == 1e-4
    assert {id(p) for p in groups["biases"]["params"]} == {id(net[0].bias), id(net[3].bias)}
    assert groups["biases"]["lr"] == 0.02 and groups["biases"]["weight_decay"] == 0.0
    assert len(groups["norms"]["params"]) == 4 and groups["norms"]["weight_decay"] == 0.0


# ---------------------------------------------------------------- batching


def test_every_rank_gets_the_same_number_of_single_aspect_batches():
    groups = [0] * 13 + [1] * 6
    per_rank = [EpochBatches(groups, 4, seed=1, epoch=3, rank=r, world_size=2) for r in range(2)]
    assert per_rank[0].per_rank == per_rank[1].per_rank == len(per_rank[0].batches) == 2  # 3 + 1 full batches
    for eb in per_rank:
        for batch in eb.batches:
            assert len(batch) == 4 and len({groups[i] for i in batch}) == 1
    # same epoch → same batches on a second call; a different epoch reshuffles
    assert EpochBatches(groups, 4, 1, 3).batches == EpochBatches(groups, 4, 1, 3).batches
    assert EpochBatches(groups, 4, 1, 3).batches != EpochBatches(groups, 4, 1, 4).batches


def test_resumed_batch_stream_continues_exactly_where_it_stopped():
    groups = [0] * 10
    full = RunBatches(groups, 2, seed=0)
    it = iter(full)
    stream = [next(it) for _ in range(12)]  # 5 batches per epoch → crosses two epoch boundaries
    resumed = iter(RunBatches(groups, 2, seed=0, start_epoch=1, skip=2))
    assert [next(resumed) for _ in range(5)] == stream[7:12]


# ---------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def straight_run(tiny_data, tiny_config_path, tmp_path_factory) -> Path:
    """4 iterations without interruption, through the command line (das train)."""
    out = tmp_path_factory.mktemp("straight")
    argv = ["train", "--config", str(tiny_config_path), "--set", f"data.train=[{tiny_data['train']}]",
            "--set", f"data.val=[{tiny_data['test']}]", "--set", "val_interval=4", "--output-dir", str(out),
            "--no-progress"]
    assert cli.main(argv) == 0
    return out


def test_resume_after_interruption_gives_the_same_weights_as_a_straight_run(tiny_data, straight_run, make_tiny_config, tmp_path):
    cfg = make_tiny_config(tiny_data, tmp_path)
    first = train(cfg, stop_at=2, progress=False)
    assert first.stopped_by == "stop_at" and first.iterations == 2
    second = train(cfg, resume=True, progress=False)
    assert second.iterations == 4
    straight = load_file(str(straight_run / "final.safetensors"))
    resumed = load_file(str(tmp_path / "final.safetensors"))
    assert straight.keys() == resumed.keys()
    for k in straight:
        torch.testing.assert_close(resumed[k], straight[k], rtol=0, atol=1e-6, msg=k)
    # the RealNVP flows of the RLE loss are trained too and must resume exactly as well
    flows = torch.load(straight_run / "last.train.pt", weights_only=True)["criterion"]
    assert flows, "the RLE loss has flow parameters"
    for k, v in second.criterion.state_dict().items():
        torch.testing.assert_close(v.cpu(), flows[k], rtol=0, atol=1e-6, msg=k)


def test_end_to_end_train_evaluate_resume(tiny_data, straight_run, make_tiny_config, tmp_path):
    out = straight_run
    for name in ("config.yaml", "final.safetensors", "final.yaml", "last.safetensors", "last.train.pt",
                 "metrics.jsonl"):
        assert (out / name).is_file(), name
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("train/images_per_s" in r for r in logged) and any("val/recall" in r for r in logged)

    result_json = tmp_path / "metrics.json"
    argv = ["evaluate", "--checkpoint", str(out / "final"), "--data", str(tiny_data["test"]), "--protocol",
            "synthetic", "--device", "cpu", "--json", str(result_json)]
    assert cli.main(argv) == 0
    metrics = json.loads(result_json.read_text())["metrics"]
    assert metrics["num_images"] == 3 and metrics["num_gt"] >= 3
    assert 0.0 <= metrics["recall"] <= 1.0

    # resume a copy of the run for one more iteration
    copy = tmp_path / "continued"
    shutil.copytree(out, copy)
    cfg = make_tiny_config(tiny_data, copy, max_iters=5)
    assert train(cfg, resume=True, progress=False).iterations == 5


def test_resume_without_a_previous_run_names_the_missing_file(tiny_data, make_tiny_config, tmp_path):
    with pytest.raises(Exception, match="last"):
        train(make_tiny_config(tiny_data, tmp_path), resume=True, progress=False)


def test_non_finite_loss_stops_the_run_and_shows_every_loss_term(tiny_data, make_tiny_config, tmp_path, monkeypatch):
    from das_core.training.losses.criterion import DASLoss

    real = DASLoss.forward

    def poisoned(self, outputs, targets):
        losses = dict(real(self, outputs, targets))
        losses["loss"] = losses["loss"] * np.nan
        return losses

    monkeypatch.setattr(DASLoss, "forward", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"iteration 0: .*loss_cls=.*loss=nan"):
        train(make_tiny_config(tiny_data, tmp_path), progress=False)


def test_budget_fits_the_schedule_into_the_remaining_minutes():
    from das_core.training.trainer import fit_max_iters

    # 60 iterations done after 30 s at 0.5 s/iteration, 10 minutes budget: (582 − 30) / 0.5 = 1104 more
    assert fit_max_iters(60, 0.5, 30.0, 10.0, 100_000) == 60 + 1104
    assert fit_max_iters(60, 0.5, 30.0, 10.0, 500) == 500  # never longer than configured
    assert fit_max_iters(60, 0.5, 700.0, 10.0, 500) == 61  # already over budget: stop soon


def test_wall_clock_budget_stops_and_checkpoints(tiny_data, make_tiny_config, tmp_path):
    result = train(make_tiny_config(tiny_data, tmp_path, max_minutes=1e-6, max_iters=50), progress=False)
    assert result.stopped_by == "max_minutes" and result.iterations == 1
    state = torch.load(tmp_path / "last.train.pt", weights_only=True)
    assert state["iteration"] == 1 and (tmp_path / "final.safetensors").is_file()


def test_init_weights_starts_the_run_from_a_checkpoint_cast_to_fp32(tiny_data, straight_run, make_tiny_config, tmp_path,
                                                                   caplog):
    from das_core.checkpoint import load_checkpoint, save_checkpoint
    from das_core.model.das import DAS
    from das_core.training.trainer import _load_init_weights

    ckpt = load_checkpoint(straight_run / "final")
    half = tmp_path / "half"
    save_checkpoint(half, {k: v.half() if v.is_floating_point() else v for k, v in ckpt.state_dict.items()},
                    ckpt.config)
    model = DAS.from_config(ckpt.config)
    _load_init_weights(model, str(half))
    for k, v in model.state_dict().items():
        want = ckpt.state_dict[k].half().float() if v.is_floating_point() else ckpt.state_dict[k]
        assert v.dtype == ckpt.state_dict[k].dtype, k
        torch.testing.assert_close(v, want, rtol=0, atol=0, msg=k)
    # and a run configured with it trains from there
    cfg = make_tiny_config(tiny_data, tmp_path / "ft", max_iters=1, init_weights=str(half))
    with caplog.at_level("INFO", logger="das_core"):
        assert train(cfg, progress=False).iterations == 1
    assert any("init_weights" in r.getMessage() and "half" in r.getMessage() for r in caplog.records)


def test_init_weights_that_do_not_fit_the_model_name_the_file_and_the_tensors(tiny_data, straight_run,
                                                                               make_tiny_config, tmp_path):
    from das_core.checkpoint import load_checkpoint, save_checkpoint
    from das_core.config import ConfigError

    ckpt = load_checkpoint(straight_run / "final")
    state = dict(ckpt.state_dict)
    dropped = sorted(state)[0]
    del state[dropped]
    bad = tmp_path / "bad"
    save_checkpoint(bad, state, ckpt.config)
    cfg = make_tiny_config(tiny_data, tmp_path / "ft", max_iters=1, init_weights=str(bad))
    with pytest.raises(ConfigError, match=rf"init_weights: .*bad.*missing \['{dropped}'\]"):
        train(cfg, progress=False)


def test_device_cuda_without_an_index_means_this_process_gpu(monkeypatch):
    """`das train --device cuda` trains on LOCAL_RANK's GPU; torch.cuda.set_device refuses a bare "cuda"."""
    from das_core.training import trainer

    chosen = []
    monkeypatch.setattr(trainer.torch.cuda, "set_device", chosen.append)
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    _, dev = trainer.init_distributed("cuda")
    assert dev == torch.device("cuda", 0)
    assert chosen == [torch.device("cuda", 0)]


def test_budget_measures_speed_after_the_warm_up_iterations():
    """The slow first iterations (loader start, cuDNN autotuning) do not shorten the schedule: the speed is timed
    from iteration _CALIB_FROM to _CALIB_TO."""
    from types import SimpleNamespace

    from das_core.training import trainer

    run = SimpleNamespace(iteration=0, horizon={"max_iters": 100_000}, cfg=SimpleNamespace(max_minutes=10.0),
                          info=trainer.DistInfo(0, 1, 0), dev=torch.device("cpu"))
    run.max_iters = 100_000
    fit = trainer._BudgetFit(0)
    elapsed = 0.0
    for it in range(1, trainer._CALIB_TO + 1):
        elapsed += 2.0 if it <= trainer._CALIB_FROM else 0.25  # warm-up at 2 s/iteration, then 0.25 s
        run.iteration = it
        fit.update(run, elapsed, None)
    expected = trainer.fit_max_iters(trainer._CALIB_TO, 0.25, elapsed, 10.0, 100_000)
    assert run.horizon["max_iters"] == expected
