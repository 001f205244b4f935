"""Reading a COCO-style annotation JSON (COCO keypoints, and Moon et al.'s MuCo/MuPoTS files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["read_coco_style_json"]


def read_coco_style_json(src: Path, error: type[ValueError], dataset: str, expected: str) -> dict[str, Any]:
    """The parsed object, which must have ``images`` and ``annotations``.

    Errors name the file: a missing file is ``FileNotFoundError``, bad JSON or a wrong layout is ``error``.
    ``dataset`` and ``expected`` only word the messages ("COCO", "a COCO object").
    """
    try:
        doc = json.loads(src.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{dataset} annotation file not found: {src}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{src}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict) or "images" not in doc or "annotations" not in doc:
        raise error(f"{src}: expected {expected} with 'images' and 'annotations'")
    return doc
