"""Joint sets: names, root, flip pairs, bones, and the COCO → skeleton mappings (DAS_SPEC §1)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SKELETONS", "Skeleton", "get_skeleton"]


@dataclass(frozen=True)
class Skeleton:
    """A fixed, ordered joint set. ``root`` is found by name, never by a magic number."""

    name: str
    joint_names: tuple[str, ...]
    root_name: str
    flip_pairs: tuple[tuple[int, int], ...]
    bones: tuple[tuple[int, int], ...]
    # target joint index ← COCO keypoint index, for 2D-only COCO supervision (DAS_SPEC §1.4)
    coco_map: tuple[tuple[int, int], ...] = ()
    # joints never supervised by this dataset's own 3D labels (Panoptic nose, DAS_SPEC §1.1)
    unsupervised_3d: tuple[int, ...] = ()

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def root(self) -> int:
        return self.joint_names.index(self.root_name)

    def flip_permutation(self) -> list[int]:
        """Index list p such that ``joints_flipped = joints[p]`` swaps left and right."""
        perm = list(range(self.num_joints))
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def __post_init__(self) -> None:
        k = len(self.joint_names)
        for a, b in (*self.flip_pairs, *self.bones):
            if not (0 <= a < k and 0 <= b < k):
                raise ValueError(f"skeleton {self.name}: joint index out of range in ({a}, {b})")
        if self.root_name not in self.joint_names:
            raise ValueError(f"skeleton {self.name}: root {self.root_name!r} is not a joint")


PANOPTIC15 = Skeleton(
    name="panoptic15",
    joint_names=(
        "neck", "nose", "mid_hip", "l_shoulder", "l_elbow", "l_wrist", "l_hip", "l_knee", "l_ankle",
        "r_shoulder", "r_elbow", "r_wrist", "r_hip", "r_knee", "r_ankle",
    ),
    root_name="mid_hip",
    flip_pairs=((3, 9), (4, 10), (5, 11), (6, 12), (7, 13), (8, 14)),
    bones=(
        (0, 1), (0, 2), (0, 3), (3, 4), (4, 5), (0, 9), (9, 10), (10, 11),
        (2, 6), (2, 12), (6, 7), (7, 8), (12, 13), (13, 14),
    ),
    coco_map=((1, 0), (3, 5), (4, 7), (5, 9), (6, 11), (7, 13), (8, 15), (9, 6), (10, 8), (11, 10),
              (12, 12), (13, 14), (14, 16)),
    unsupervised_3d=(1,),
)

MUCO21 = Skeleton(
    name="muco21",
    joint_names=(
        "head_top", "thorax", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
        "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "pelvis", "spine", "head",
        "r_hand", "l_hand", "r_toe", "l_toe",
    ),
    root_name="pelvis",
    flip_pairs=((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (17, 18), (19, 20)),
    bones=(
        (0, 16), (16, 1), (1, 15), (15, 14), (14, 8), (14, 11), (8, 9), (9, 10), (10, 19),
        (11, 12), (12, 13), (13, 20), (1, 2), (2, 3), (3, 4), (4, 17), (1, 5), (5, 6), (6, 7), (7, 18),
    ),
    coco_map=((2, 6), (3, 8), (4, 10), (5, 5), (6, 7), (7, 9), (8, 12), (9, 14), (10, 16), (11, 11),
              (12, 13), (13, 15)),
)

# MuPoTS-3D evaluation: the first 17 MuCo joints; parent of each joint for bone-length normalisation
# (the MuPoTS "relevant joints" traversal, DAS_SPEC §9.2) and the 14 joints PCK is computed over.
# As in the toolkit's first-order parent table: head_top (0) and head (16) both hang off the thorax (1).
MUPOTS17_PARENTS: tuple[int, ...] = (1, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, 14, 14, 1)
MUPOTS_PCK_JOINTS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)

COCO17_NAMES: tuple[str, ...] = (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
    "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
)

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (PANOPTIC15, MUCO21)}


def get_skeleton(name: str) -> Skeleton:
    try:
        return SKELETONS[name]
    except KeyError:
        raise KeyError(f"unknown skeleton {name!r}; known: {sorted(SKELETONS)}") from None
