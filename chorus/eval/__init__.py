"""Judging videos of the shapes world.

- checker: read a clip's colour, shape, direction, background, size and speed back from its pixels
- sample: sample prompts from the shapes vocabulary, generate them, judge the results
- fidelity: PSNR, SSIM and temporal consistency against a reference
- grid: a PNG contact sheet of clips, to check the checker by eye
- cli: ``chorus eval``
"""
