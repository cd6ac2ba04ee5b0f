"""Measure a model folder on the fixed prompt set and write the figures into its card.

    python scripts/record_model_quality.py models/chorus-shapes

The card's ``quality_48`` is what tests/unit/test_model_quality.py holds the shipped model to.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from chorus.eval.sample import fixed_set_quality
from chorus.models.catalog import CARD_FILE
from chorus.models.wan import WanAdapter


def main(path: Path) -> None:
    scores, errors = fixed_set_quality(WanAdapter.from_dir(path))
    card_file = path / CARD_FILE
    card = json.loads(card_file.read_text())
    card["quality_48"] = {k: round(scores[k], 4) for k in ("color", "shape", "direction", "background", "all")}
    card_file.write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps({"quality_48": card["quality_48"], "errors": errors}, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
