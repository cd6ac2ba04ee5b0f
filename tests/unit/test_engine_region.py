"""Region masks from planted cross-attention patterns."""

import torch

from chorus.reuse.region import RegionConfig, region_mask

MAP_GRID, TOKEN_GRID = (4, 4, 4), (4, 8, 8)  # maps stored at half the spatial resolution


def planted_maps(text_tokens: int = 16) -> torch.Tensor:
    """Weak uniform noise everywhere; token 5 attends strongly to a box, token 9 to another corner."""
    torch.manual_seed(0)
    maps = torch.rand(*MAP_GRID, text_tokens) * 0.01
    maps[1:3, 0:2, 1:3, 5] += 1.0
    maps[:, 3, 3, 9] += 1.0
    return maps.reshape(-1, text_tokens)


def test_mask_covers_the_planted_region_exactly_without_margin():
    config = RegionConfig(margin=(0, 0, 0), union_frames=False)
    region = region_mask(planted_maps(), [5], MAP_GRID, TOKEN_GRID, config)
    expected = torch.zeros(TOKEN_GRID, dtype=torch.bool)
    expected[1:3, 0:4, 2:6] = True  # the box, upsampled x2 in h and w
    assert torch.equal(region.mask, expected)
    assert region.fraction == expected.float().mean().item()
    assert torch.equal(region.index, expected.flatten().nonzero().squeeze(1))


def test_margin_dilates_in_token_space():
    config = RegionConfig(margin=(1, 1, 1), union_frames=False)
    region = region_mask(planted_maps(), [5], MAP_GRID, TOKEN_GRID, config)
    expected = torch.zeros(TOKEN_GRID, dtype=torch.bool)
    expected[0:4, 0:5, 1:7] = True
    assert torch.equal(region.mask, expected)


def test_several_tokens_union_and_flat_or_empty_maps():
    both = region_mask(planted_maps(), [5, 9], MAP_GRID, TOKEN_GRID, RegionConfig(margin=(0, 0, 0)))
    assert both.mask[1, 0, 2] and both.mask[0, 7, 7] and not both.mask[0, 0, 0]
    flat = torch.full((64, 16), 1 / 16)
    assert region_mask(flat, [5], MAP_GRID, TOKEN_GRID, RegionConfig()).fraction == 1.0
    assert region_mask(planted_maps(), [], MAP_GRID, TOKEN_GRID, RegionConfig()).fraction == 0.0


def test_a_moving_pattern_gives_a_mask_over_its_whole_trajectory_in_every_frame():
    """Token 5 attends to a blob that moves one map cell right per frame: every frame's mask covers all
    the cells the object passes through, so a changed motion is recomputed wherever the object goes."""
    torch.manual_seed(0)
    maps = torch.rand(*MAP_GRID, 16) * 0.01
    for t in range(MAP_GRID[0]):
        maps[t, 1, t, 5] += 1.0
    region = region_mask(maps.reshape(-1, 16), [5], MAP_GRID, TOKEN_GRID, RegionConfig(margin=(0, 0, 0)))
    trajectory = torch.zeros(TOKEN_GRID[1:], dtype=torch.bool)
    trajectory[2:4, 0:8] = True  # map row 1, columns 0-3, upsampled x2
    for t in range(TOKEN_GRID[0]):
        assert torch.equal(region.mask[t], trajectory)
    frame_by_frame = region_mask(
        maps.reshape(-1, 16), [5], MAP_GRID, TOKEN_GRID, RegionConfig(margin=(0, 0, 0), union_frames=False)
    )
    assert frame_by_frame.fraction < region.fraction  # each frame alone covers only where the object was
