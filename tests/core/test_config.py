"""The config schema: defaults load, every shipped YAML validates, and mistakes name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from das_core.config import (
    ConfigError,
    ModelConfig,
    TrainConfig,
    config_from_dict,
    dump_config,
    load_config,
    load_train_config,
    parse_overrides,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((ROOT / "config" / "model").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_model_config_loads(path: Path) -> None:
    cfg = load_config(path)
    assert len(cfg.strides) == len(cfg.targets.regress_ranges) == cfg.fpn.num_outs


@pytest.mark.parametrize("path", sorted((ROOT / "config" / "train").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_train_config_loads(path: Path) -> None:
    assert isinstance(load_train_config(path), TrainConfig)


def test_unknown_key_is_an_error_naming_the_dotted_key() -> None:
    with pytest.raises(ConfigError, match=r"head\.stacked_conv: unknown key"):
        config_from_dict(ModelConfig, {"head": {"stacked_conv": 2}})


def test_wrong_type_is_an_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"head\.stacked_convs: expected an integer"):
        config_from_dict(ModelConfig, {"head": {"stacked_convs": "two"}})
    with pytest.raises(ConfigError, match=r"head\.use_dcn: expected true/false"):
        config_from_dict(ModelConfig, {"head": {"use_dcn": 1}})


def test_literal_choices_are_enforced() -> None:
    with pytest.raises(ConfigError, match=r"update\.mode: expected one of"):
        config_from_dict(ModelConfig, {"update": {"mode": "both"}})


def test_range_checks_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"decode\.score_thr"):
        config_from_dict(ModelConfig, {"decode": {"score_thr": 1.5}})
    with pytest.raises(ConfigError, match=r"z_norm"):
        config_from_dict(ModelConfig, {"z_norm": 0})


def test_strides_and_ranges_must_match_the_number_of_levels() -> None:
    with pytest.raises(ConfigError, match="strides"):
        config_from_dict(ModelConfig, {"strides": [8, 16, 32]})


def test_unknown_skeleton_is_rejected() -> None:
    with pytest.raises(ConfigError, match="skeleton"):
        config_from_dict(ModelConfig, {"skeleton": "coco17"})


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("head: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    typo = tmp_path / "typo.yaml"
    typo.write_text("fpn:\n  out_chanels: 64\n")
    with pytest.raises(ConfigError, match=r"typo.yaml: fpn\.out_chanels: unknown key"):
        load_config(typo)


def test_dump_then_load_is_identity(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "config" / "model" / "das_r18_fpn.yaml")
    out = tmp_path / "cfg.yaml"
    out.write_text(dump_config(cfg))
    assert load_config(out) == cfg


def test_train_config_resolves_model_path_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("name: tiny\nstrides: [8, 16, 32, 64]\nfpn: {num_outs: 4}\n"
                                     "targets: {regress_ranges: [[-1, 64], [64, 128], [128, 256], [256, 1.0e8]]}\n")
    (tmp_path / "t.yaml").write_text("model: m.yaml\nmax_iters: 5\ndata: {train: [a.json]}\n")
    cfg = load_train_config(tmp_path / "t.yaml", parse_overrides(["optim.lr=0.01", "max_iters=7"]))
    assert cfg.model.name == "tiny" and cfg.max_iters == 7 and cfg.optim.lr == 0.01
    assert cfg.data.train == (str((tmp_path / "a.json").resolve()),)
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_overrides(["lr0.1"])


def test_model_overrides_merge_into_a_model_file(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(f"model: {ROOT / 'config' / 'model' / 'das_r18_fpn.yaml'}\n")
    cfg = load_train_config(tmp_path / "t.yaml", parse_overrides(["model.loss.pose_loss=l1"]))
    assert cfg.model.loss.pose_loss == "l1" and cfg.model.backbone.name == "resnet18"


def test_a_training_file_list_entry_that_is_not_a_name_is_a_config_error(tmp_path):
    # Found by tests/hardening/test_fuzz_config.py: `train: [null]` raised a bare TypeError from pathlib.
    from das_core.config import ConfigError, load_train_config

    p = tmp_path / "t.yaml"
    p.write_text("data:\n  train: [null]\n")
    with pytest.raises(ConfigError, match=r"data\.train: file names must be strings"):
        load_train_config(p)
