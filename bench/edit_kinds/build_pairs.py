"""Build the labelled edit-kind pairs (pairs.jsonl) from the public prompt suites under sources/.

Every pair is two prompts that both occur, verbatim, in one public suite; its label is the set of edit
kinds that differ between them, read off how the suite built the prompts (VBench's per-dimension
templates) or, for PartiPrompts, off a hand-written table keyed by the words that differ
(parti_labels.tsv). Pairs whose kind is ambiguous are left out rather than guessed (see README.md).

The split is by group (the object, the base prompt, the subject...), hashed: a held-out ``test`` group
never shares its prompts' family with a ``dev`` one, and the classifier was never tuned on ``test``.

    python bench/edit_kinds/build_pairs.py   # rewrites bench/edit_kinds/pairs.jsonl
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
VBENCH = HERE / "sources" / "vbench"
PARTI = HERE / "sources" / "parti" / "PartiPrompts.tsv"
OUT = HERE / "pairs.jsonl"
TEST_SHARE = 0.4  # share of groups held out
PARTI_PER_GROUP = 4  # PartiPrompts repeats some templates many times: a few pairs per template

_WORD = re.compile(r"[a-z0-9']+")
# VBench's colour dimension uses these nine colours; its style/camera dimensions append these suffixes.
COLOURS = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "black", "white")
STYLES = (
    ", Van Gogh style",
    ", oil painting",
    " by Hokusai, in the style of Ukiyo",
    ", black and white",
    ", pixel art",
    ", in cyberpunk style",
    ", animated style",
    ", watercolor painting",
    ", surrealism style",
)
CAMERA_SUFFIXES = (
    ", zoom in",
    ", zoom out",
    ", pan left",
    ", pan right",
    ", tilt up",
    ", tilt down",
    ", with an intense shaking effect",
    ", featuring a steady and smooth perspective",
    ", racking focus",
)
SLOW_MOTION = ", in super slow motion"  # a speed edit: motion
# VBench-2.0 Camera_Motion's subjects: places (a swap is a scene edit) and things (an identity edit);
# the landmarks that are both (Pyramid, Burj Khalifa) are left out.
PLACES = ("Garden", "Mount Fuji", "Blue Lagoon", "Machu Picchu", "Forbidden City", "Alhambra")
THINGS = ("Table", "Vase", "Laptop", "Watch")


def lines(name: str) -> list[str]:
    return [s.strip() for s in (VBENCH / name).read_text().splitlines() if s.strip()]


def pair(source: str, target: str, kinds: set[str], suite: str, group: str) -> dict:
    return {"source": source, "target": target, "kinds": sorted(kinds), "suite": suite, "group": group}


def chain(items: list[str], limit: int) -> Iterator[tuple[str, str]]:
    """Neighbouring items as pairs, at most ``limit`` of them."""
    yield from itertools.islice(zip(items, items[1:]), limit)


def vbench_colour() -> Iterator[dict]:
    prompts = lines("color.txt")
    parsed = {}
    for p in prompts:
        words = p.split(" ", 2)
        if len(words) == 3 and words[1] in COLOURS:
            parsed[p] = (words[1], words[2])
    by_object: dict[str, list[str]] = {}
    by_colour: dict[str, list[str]] = {}
    for p, (colour, obj) in parsed.items():
        by_object.setdefault(obj, []).append(p)
        by_colour.setdefault(colour, []).append(p)
    for obj, ps in by_object.items():
        for a, b in chain(ps, 3):
            yield pair(a, b, {"appearance"}, "vbench/color", f"color:{obj}")
    for colour, ps in by_colour.items():
        for a, b in chain(ps, 2):
            yield pair(a, b, {"identity"}, "vbench/color", f"color-object:{colour}")
    objects = list(by_object)
    for o1, o2 in zip(objects, objects[1:]):  # a different object in a different colour
        a, b = by_object[o1][0], by_object[o2][2]
        yield pair(a, b, {"appearance", "identity"}, "vbench/color", f"color-both:{o1}")


def suffixed(prompts: list[str], suffixes: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """base prompt -> {suffix: prompt} for prompts that are a base plus one of ``suffixes``."""
    out: dict[str, dict[str, str]] = {}
    for p in prompts:
        for s in suffixes:
            if p.endswith(s):
                out.setdefault(p[: -len(s)], {})[s] = p
    return out


def vbench_style_and_camera() -> Iterator[dict]:
    styles = suffixed(lines("appearance_style.txt"), STYLES)
    cameras = suffixed(lines("temporal_style.txt"), (*CAMERA_SUFFIXES, SLOW_MOTION))
    for base, by_style in styles.items():
        for a, b in chain([by_style[s] for s in STYLES if s in by_style], 2):
            yield pair(a, b, {"appearance"}, "vbench/appearance_style", f"style:{base}")
    for base, by_camera in cameras.items():
        ordered = [by_camera[s] for s in CAMERA_SUFFIXES if s in by_camera]
        for a, b in chain(ordered, 2):
            yield pair(a, b, {"camera"}, "vbench/temporal_style", f"camera:{base}")
        if SLOW_MOTION in by_camera and ordered:
            yield pair(
                ordered[-1], by_camera[SLOW_MOTION], {"camera", "motion"}, "vbench/temporal_style", f"camera:{base}"
            )
        if base in styles and ordered:  # same base: one style, one camera motion
            style = next(iter(styles[base].values()))
            yield pair(
                style, ordered[0], {"appearance", "camera"}, "vbench/appearance_style+temporal_style", f"style:{base}"
            )


def vbench_scene() -> Iterator[dict]:
    for i, (a, b) in enumerate(chain(lines("scene.txt"), 24)):
        yield pair(a, b, {"scene"}, "vbench/scene", f"scene:{i // 4}")
    tableaux = [p for p in lines("temporal_flickering.txt") if p.startswith("A tranquil tableau of ")]
    for i, (a, b) in enumerate(chain(tableaux, 12)):
        yield pair(a, b, {"scene"}, "vbench/temporal_flickering", f"tableau:{i // 4}")


def vbench_identity() -> Iterator[dict]:
    for i, (a, b) in enumerate(chain(lines("object_class.txt"), 20)):
        yield pair(a, b, {"identity"}, "vbench/object_class", f"object:{i // 4}")
    for i, (a, b) in enumerate(chain(lines("multiple_objects.txt"), 10)):
        yield pair(a, b, {"identity"}, "vbench/multiple_objects", f"objects:{i // 4}")


def vbench_action() -> Iterator[dict]:
    actions = [p for p in lines("human_action.txt") if p.startswith("A person is ") and "(" not in p]
    for i, (a, b) in enumerate(chain(actions, 24)):
        yield pair(a, b, {"motion"}, "vbench/human_action", f"action:{i // 4}")
    anatomy = lines("vbench2_Human_Anatomy.txt")
    simple = re.compile(r"^A (man|woman) is (\w+ing)\.$")  # one-verb actions: running, walking...
    by_person: dict[str, list[str]] = {}
    for p in anatomy:
        if m := simple.match(p):
            by_person.setdefault(m.group(1), []).append(p)
    for person, ps in by_person.items():
        for a, b in chain(ps, 4):
            yield pair(a, b, {"motion"}, "vbench2/Human_Anatomy", f"anatomy-action:{person}")
    for p in anatomy:  # the same action by a man and by a woman
        if p.startswith("A man is ") and (q := "A woman is " + p[len("A man is ") :]) in anatomy:
            yield pair(p, q, {"identity"}, "vbench2/Human_Anatomy", f"anatomy-person:{p.split()[3]}")


def vbench_camera_subjects() -> Iterator[dict]:
    prompts = lines("vbench2_Camera_Motion.txt")
    moves = (", zoom in.", ", zoom out.", ", tilt up.", ", tilt down.", ", pan left.", ", pan right.")
    for subject in (*PLACES, *THINGS):
        ordered = [subject + m for m in moves if subject + m in prompts]
        for a, b in chain(ordered, 2):
            yield pair(a, b, {"camera"}, "vbench2/Camera_Motion", f"camera-subject:{subject}")
    for subjects, kind in ((PLACES, "scene"), (THINGS, "identity")):
        for (s1, s2), move in zip(zip(subjects, subjects[1:]), itertools.cycle(moves)):
            if s1 + move in prompts and s2 + move in prompts:
                yield pair(s1 + move, s2 + move, {kind}, "vbench2/Camera_Motion", f"camera-swap:{move}")


def vbench_layout() -> Iterator[dict]:
    # Instance_Preservation: one thing, then two of them (a count edit), same action.
    prompts = lines("vbench2_Instance_Preservation.txt")
    one = re.compile(r"^An? (.+) is (\w+ing.*)$")
    two = re.compile(r"^Two (.+) are (\w+ing.*)$")
    for p in prompts:
        if m := one.match(p):
            for q in prompts:
                if (n := two.match(q)) and n.group(2) == m.group(2) and m.group(1).split()[-1][:4] in n.group(1):
                    # the same modifiers ("orange dog" -> "orange dogs") is a count edit; a new colour too
                    same = m.group(1).split()[:-1] == n.group(1).split()[:-1]
                    kinds = {"layout"} if same else {"layout", "appearance"}
                    yield pair(p, q, kinds, "vbench2/Instance_Preservation", f"count:{m.group(1)}")
    # Dynamic_Spatial_Relationship: where the subject starts changes, the rest does not (a position edit).
    clause = re.compile(r"^(An? \w+ is )(.+?)( an? \w+|the \w+)(, then .*)$")
    starts: dict[tuple[str, str, str], list[str]] = {}
    for p in lines("vbench2_Dynamic_Spatial_Relationship.txt"):
        if m := clause.match(p):
            starts.setdefault((m.group(1), m.group(3), m.group(4)), []).append(p)
    for (subject, _, _), ps in starts.items():
        for a, b in chain(ps, 2):
            yield pair(a, b, {"layout"}, "vbench2/Dynamic_Spatial_Relationship", f"position:{subject}")


def vbench_dynamic_colour() -> Iterator[dict]:
    change = re.compile(r"^An? (\w+) changes from (\w+) to (\w+)\.$")
    parsed = [(p, m.groups()) for p in lines("vbench2_Dynamic_Attribute.txt") if (m := change.match(p))]
    parsed = [
        (p, g) for p, g in parsed if g[1] in COLOURS + ("golden", "brown") and g[2] in COLOURS + ("golden", "brown")
    ]
    for (p, (s1, a1, b1)), (q, (s2, a2, b2)) in itertools.combinations(parsed, 2):
        if s1 == s2 and a1 == a2 and b1 != b2:
            yield pair(p, q, {"appearance"}, "vbench2/Dynamic_Attribute", f"dyncolour:{s1}")
        elif s1 != s2 and (a1, b1) == (a2, b2):
            yield pair(p, q, {"identity"}, "vbench2/Dynamic_Attribute", f"dynobject:{a1}-{b1}")


def diff_key(source: str, target: str) -> str:
    a, b = _WORD.findall(source.lower()), _WORD.findall(target.lower())
    ops = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    return " ; ".join(f"{' '.join(a[i1:i2])} > {' '.join(b[j1:j2])}" for op, i1, i2, j1, j2 in ops if op != "equal")


def parti() -> Iterator[dict]:
    rows = [
        ln.split("\t") for ln in (HERE / "parti_labels.tsv").read_text().splitlines() if ln and not ln.startswith("#")
    ]
    labels = {key: set(kinds.split(",")) for key, kinds in rows}
    with PARTI.open() as f:
        prompts = list(dict.fromkeys(r["Prompt"].strip() for r in csv.DictReader(f, delimiter="\t")))
    per_group: dict[str, int] = {}
    used: set[str] = set()
    for a, b in itertools.combinations(prompts, 2):
        key = diff_key(a, b)
        if key not in labels:
            continue
        used.add(key)
        group = f"parti:{' '.join(_WORD.findall(a.lower())[:4])}"
        if per_group.get(group, 0) >= PARTI_PER_GROUP:
            continue
        per_group[group] = per_group.get(group, 0) + 1
        yield pair(a, b, labels[key], "parti", group)
    if unused := set(labels) - used:
        raise SystemExit(f"labels that match no PartiPrompts pair: {sorted(unused)}")


def split_of(group: str) -> str:
    h = int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < TEST_SHARE else "dev"


def build() -> list[dict]:
    families = (vbench_colour, vbench_style_and_camera, vbench_scene, vbench_identity, vbench_action)
    families += (vbench_camera_subjects, vbench_layout, vbench_dynamic_colour, parti)
    seen: set[tuple[str, str]] = set()
    out = []
    for family in families:
        for p in family():
            if p["source"] != p["target"] and (p["source"], p["target"]) not in seen:
                seen.add((p["source"], p["target"]))
                out.append(p | {"split": split_of(p["group"])})
    return out


def main() -> None:
    pairs = build()
    OUT.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    counts: dict[str, int] = {}
    for p in pairs:
        for k in p["kinds"]:
            counts[f"{p['split']}/{k}"] = counts.get(f"{p['split']}/{k}", 0) + 1
    multi = sum(len(p["kinds"]) > 1 for p in pairs)
    print(f"{len(pairs)} pairs ({multi} multi-kind) -> {OUT}")
    print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
