"""Metric uncertainty (issue 18.1): predicted sigma → 3×3 position covariance in m², optical frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from das_core.camera import Intrinsics, ResizeRecord
from das_core.config import ConfigError, ModelConfig, UncertaintyConfig, config_from_dict
from das_core.engine.decode import joint_covariance, to_persons_batch, transfer
from tests.core.test_decode import CAMERAS, ROOT, encode, make_people, run_decode


def _cam_row(c: Intrinsics) -> torch.Tensor:
    return torch.tensor([[c.fx, c.fy, c.cx, c.cy, c.skew, 1.0, 1.0]], dtype=torch.float64)


def _one(sigma_uv, sigma_z, uv, z, c: Intrinsics) -> np.ndarray:
    t = lambda a: torch.as_tensor(np.asarray(a, np.float64)).reshape(1, 1, 1, *np.shape(a))  # noqa: E731
    return joint_covariance(t(sigma_uv), t(sigma_z), t(uv), t(z), _cam_row(c))[0, 0, 0].numpy()


def test_depth_only_covariance_lies_exactly_along_the_viewing_ray() -> None:
    cam = Intrinsics(600.0, 650.0, 320.0, 240.0, skew=2.0)
    uv, z, sz = (500.0, 100.0), 4.0, 0.3
    cov = _one((0.0, 0.0), sz, uv, z, cam)
    ray = cam.backproject(np.array([uv]), np.array([1.0]))[0]  # (x_n, y_n, 1)
    np.testing.assert_allclose(cov, sz**2 * np.outer(ray, ray), rtol=1e-12)


def test_pixel_only_covariance_at_the_principal_point_is_lateral() -> None:
    cam = Intrinsics(500.0, 400.0, 320.0, 240.0)
    cov = _one((2.0, 3.0), 0.0, (320.0, 240.0), 5.0, cam)
    np.testing.assert_allclose(cov, np.diag([(5 * 2 / 500) ** 2, (5 * 3 / 400) ** 2, 0.0]), atol=1e-15)


def test_covariance_matches_monte_carlo_back_projection() -> None:
    cam = Intrinsics(700.0, 720.0, 310.0, 250.0, skew=4.0)
    uv, z, suv, sz = np.array([450.0, 60.0]), 3.5, np.array([1.5, 2.5]), 0.2
    rng = np.random.default_rng(0)
    n = 200_000
    samples_uv = uv + rng.standard_normal((n, 2)) * suv
    samples_z = z + rng.standard_normal(n) * sz
    pts = cam.backproject(samples_uv, samples_z)
    cov = _one(suv, sz, uv, z, cam)
    # first order is exact for the Z column and misses only the σ_uv·σ_Z cross terms (~1 % here)
    np.testing.assert_allclose(cov, np.cov(pts.T), rtol=0.03, atol=2e-7)


def _decoded_people(cfg: ModelConfig, sigma: float = 0.2):
    camera, w, h, long_side, short_side = CAMERAS[1]
    cfg = ModelConfig(**{**cfg.__dict__, "input": type(cfg.input)(short_side=short_side, long_side=long_side)})
    record = ResizeRecord.for_image(w, h, long_side, short_side, cfg.input.size_divisor)
    people = make_people(4, seed=1)
    uv = camera.project(people[:, ROOT])
    people = people[(uv[:, 0] > 2) & (uv[:, 0] < w - 3) & (uv[:, 1] > 2) & (uv[:, 1] < h - 3)]
    heads, sizes = encode(people, camera, record, cfg, [0.9 - 0.1 * i for i in range(len(people))], sigma=sigma)
    return run_decode(heads, sizes, [record], [camera], cfg), people, camera, record


def test_decoded_covariance_is_finite_symmetric_psd_and_dominated_by_depth_along_the_ray() -> None:
    decoded, people, camera, _ = _decoded_people(ModelConfig())
    (persons,) = to_persons_batch(decoded)
    cov = persons.joint_covariance
    assert cov is not None and cov.shape == (len(people), people.shape[1], 3, 3)
    assert np.isfinite(cov).all()
    np.testing.assert_array_equal(cov, np.swapaxes(cov, -1, -2))
    vals, vecs = np.linalg.eigh(cov.astype(np.float64))
    assert (vals > -1e-9).all()
    # the largest axis points along the joint's viewing ray (optical frame: the ray is the position itself)
    ray = persons.joints_3d / np.linalg.norm(persons.joints_3d, axis=-1, keepdims=True)
    alignment = np.abs(np.einsum("nki,nki->nk", vecs[..., :, 2], ray))
    assert (alignment > 0.99).all()
    assert (vals[..., 2] > 20 * vals[..., 1]).all()
    np.testing.assert_allclose(persons.root_covariance(ROOT), cov[:, ROOT])


def test_root_depth_sigma_is_the_configured_fraction_and_the_root_has_no_d_term() -> None:
    unc = UncertaintyConfig(offset_scale=1e-6, depth_scale=1e-6, root_depth_rel=0.1)
    decoded, people, _, _ = _decoded_people(ModelConfig(uncertainty=unc), sigma=0.5)
    (persons,) = to_persons_batch(decoded)
    root = persons.joints_3d[:, ROOT]
    # Var(Z_root) = (0.1·Z_root)²: the root's constant d-sigma must not add (0.5 m · 0.5)²
    np.testing.assert_allclose(persons.joint_covariance[:, ROOT, 2, 2], (0.1 * root[:, 2]) ** 2, rtol=1e-4)


def test_scales_multiply_their_own_term() -> None:
    base, _, _, _ = _decoded_people(ModelConfig(uncertainty=UncertaintyConfig(1.0, 1.0, 1e-6)))
    double, _, _, _ = _decoded_people(ModelConfig(uncertainty=UncertaintyConfig(2.0, 2.0, 1e-6)))
    a, b = (to_persons_batch(d)[0].joint_covariance for d in (base, double))
    np.testing.assert_allclose(b, 4 * a, rtol=1e-4, atol=1e-9)  # the root keeps only the 1e-6 root term


def test_covariance_survives_the_packed_transfer() -> None:
    decoded, _, _, _ = _decoded_people(ModelConfig())
    (persons,), _ = transfer(decoded)
    d = decoded[0]
    n = int(d.valid.sum())
    np.testing.assert_array_equal(persons.joint_covariance, d.joint_covariance[:n].numpy())
    assert persons[1:].joint_covariance.shape[0] == n - 1  # indexing keeps the field


@pytest.mark.parametrize("key", ["offset_scale", "depth_scale", "root_depth_rel"])
def test_non_positive_uncertainty_scale_is_a_config_error(key: str) -> None:
    with pytest.raises(ConfigError, match=f"uncertainty.{key}"):
        config_from_dict(ModelConfig, {"uncertainty": {key: 0.0}})
