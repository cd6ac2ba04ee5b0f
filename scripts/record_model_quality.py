"""Measure a model folder on the fixed prompt set and write the figures into its card.

    python scripts/record_model_quality.py models/chorus-shapes            # 48 prompts at the card's steps
    python scripts/record_model_quality.py models/chorus-shapes-base 16    # a many-step model: fewer prompts

The card's ``quality_<N>`` is what tests/unit/test_model_quality.py holds each shipped model to.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from chorus.eval.sample import fixed_set_quality
from chorus.models.catalog import CARD_FILE
from chorus.models.wan import WanAdapter


def main(path: Path, num_prompts: int) -> None:
    scores, errors = fixed_set_quality(WanAdapter.from_dir(path), num_prompts)
    card_file = path / CARD_FILE
    card = {k: v for k, v in json.loads(card_file.read_text()).items() if not k.startswith("quality_")}
    key = f"quality_{num_prompts}"
    card[key] = {k: round(scores[k], 4) for k in ("color", "shape", "direction", "background", "all")}
    card_file.write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps({key: card[key], "errors": errors}, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 48)
