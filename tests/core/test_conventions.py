"""The two coordinate rules have one implementation each, and every user agrees with it."""

from __future__ import annotations

import numpy as np
import torch

from das_core.camera import Intrinsics, ResizeRecord, from_resized, to_resized
from das_core.engine.decode import pixel_mapping
from das_core.model.dense import cell_center, cell_centers, cell_grid


def test_native_decode_mapping_and_resize_record_give_the_same_pixels() -> None:
    rec = ResizeRecord.for_image(1280, 720, 640, 384, 32)
    uv_net = np.array([[0.0, 0.0], [319.5, 191.25], [639.0, 383.0]])
    s = torch.tensor([rec.sx, rec.sy], dtype=torch.float64)
    mapping = pixel_mapping("native")
    got = mapping.to_original(torch.from_numpy(uv_net), s).numpy()
    np.testing.assert_array_equal(got, rec.to_original(uv_net))
    np.testing.assert_array_equal(mapping.to_network(torch.from_numpy(got), s).numpy(), rec.to_network(got))
    np.testing.assert_allclose(rec.to_network(rec.to_original(uv_net)), uv_net, atol=1e-12)


def test_resized_intrinsics_follow_the_same_rule() -> None:
    k = Intrinsics(500.0, 510.0, 319.5, 239.5).scaled(0.5, 0.25)
    assert (k.cx, k.cy) == (to_resized(319.5, 0.5), to_resized(239.5, 0.25)) == (159.5, 59.5)
    assert from_resized(k.cx, 0.5) == 319.5


def test_cell_centres_of_every_level_follow_cell_center() -> None:
    sizes, strides = [(3, 4), (2, 2)], (8, 16)
    pts, strd = cell_centers(sizes, strides)
    assert pts.shape == (16, 2) and strd.tolist() == [8.0] * 12 + [16.0] * 4
    # level 0, row 2, column 1; level 1, row 1, column 0
    assert pts[2 * 4 + 1].tolist() == [cell_center(torch.tensor(1.0), 8).item(), 20.0] == [12.0, 20.0]
    assert pts[12 + 2].tolist() == [8.0, 24.0]
    # the recursive update's grid units are the same centres divided by the stride
    torch.testing.assert_close(cell_grid(3, 4, 1).reshape(-1, 2) * 8, pts[:12], rtol=0, atol=0)
