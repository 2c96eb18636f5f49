"""Our distributed batch samplers (arcface_paddle.core.samplers), as the trainer uses them: coverage per epoch,
the same global order for any process count, exact resume, and the P×K structure of triplet batches."""
import numpy as np
import pytest

from arcface_paddle.core.errors import ToolkitError
from arcface_paddle.core.samplers import GlobalBatchSampler, IdentityBatchSampler


def _epoch(sampler, epoch, start_batch=0):
    sampler.set_epoch(epoch, start_batch=start_batch)
    return list(sampler)


def _global_batches(num_samples, batch_size, world_size, epoch, seed=3):
    """The global batches of one epoch, assembled from every rank's slice."""
    per_rank = [_epoch(GlobalBatchSampler(num_samples, batch_size, rank=r, world_size=world_size, seed=seed), epoch)
                for r in range(world_size)]
    assert len({len(batches) for batches in per_rank}) == 1        # every rank takes the same number of steps
    return [sum(parts, []) for parts in zip(*per_rank)]


def test_global_sampler_every_sample_exactly_once_per_epoch():
    for epoch in range(3):
        batches = _epoch(GlobalBatchSampler(48, 8, seed=3), epoch)
        assert len(batches) == 6 and all(len(batch) == 8 for batch in batches)
        assert sorted(sum(batches, [])) == list(range(48))
    # 50 images, global batch 8: 48 per epoch, none twice; the 2 left out change with the epoch.
    seen, left_out = set(), []
    for epoch in range(6):
        flat = sum(_epoch(GlobalBatchSampler(50, 8, seed=3), epoch), [])
        assert len(flat) == len(set(flat)) == 48 and set(flat) <= set(range(50))
        left_out.append(frozenset(range(50)) - set(flat))
        seen |= set(flat)
    assert seen == set(range(50)) and len(set(left_out)) > 1
    in_order = [list(range(start, start + 8)) for start in range(0, 48, 8)]
    assert _epoch(GlobalBatchSampler(48, 8, seed=3, shuffle=False), 2) == in_order


def test_global_sampler_same_global_order_for_any_process_count():
    for epoch in range(2):
        one = _global_batches(50, 8, 1, epoch)
        assert _global_batches(50, 4, 2, epoch) == one == _global_batches(50, 2, 4, epoch)
    assert _global_batches(50, 8, 1, 0) != _global_batches(50, 8, 1, 1)            # reshuffled every epoch
    assert _global_batches(50, 8, 1, 0) != _global_batches(50, 8, 1, 0, seed=4)    # and per seed
    rank1 = _epoch(GlobalBatchSampler(50, 4, rank=1, world_size=2, seed=3), 0)
    assert [batch[4:] for batch in _global_batches(50, 8, 1, 0)] == rank1          # rank r: slice r of the batch


def test_global_sampler_resume_skips_exactly_the_consumed_batches():
    sampler = GlobalBatchSampler(50, 4, rank=1, world_size=2, seed=3)
    full = _epoch(sampler, 1)
    for start in range(len(full) + 1):
        resumed = GlobalBatchSampler(50, 4, rank=1, world_size=2, seed=3)
        assert _epoch(resumed, 1, start_batch=start) == full[start:] and len(resumed) == len(full) - start
    with pytest.raises(ToolkitError, match=r"7 images, fewer than one global batch of 8 \(batch_size 4 × 2 "):
        GlobalBatchSampler(7, 4, world_size=2)


LABELS = np.concatenate([np.repeat(np.arange(10), 5),          # identities 0-9: 5 images each
                         [10],                                  # one image: never sampled (no positive)
                         [11, 11, 12, 12, 12]])                 # fewer images than K = 4: some repeat


def _identity_batches(batch_size, world_size, epoch, start_batch=0):
    per_rank = [_epoch(IdentityBatchSampler(LABELS, batch_size, 4, rank=r, world_size=world_size, seed=1),
                       epoch, start_batch) for r in range(world_size)]
    return [sum(parts, []) for parts in zip(*per_rank)], per_rank


def test_identity_sampler_p_by_k_and_every_identity_once_per_epoch():
    for epoch in range(3):
        batches, _ = _identity_batches(8, 1, epoch)
        assert len(batches) == 6                                   # 12 identities with >= 2 images, 2 a batch
        identities = []
        for batch in batches:
            ids = LABELS[batch]
            assert len(batch) == 8
            # P = 2 identities × K = 4 images, each identity's images together
            assert len(set(ids[:4])) == len(set(ids[4:])) == 1 and ids[0] != ids[4]
            for start in (0, 4):
                images = batch[start:start + 4]
                members = np.flatnonzero(LABELS == ids[start]).tolist()
                if len(members) >= 4:
                    assert len(set(images)) == 4                   # K distinct images when there are K
                else:
                    assert set(images) == set(members)             # all of a small identity's images
            identities += [int(ids[0]), int(ids[4])]
        assert sorted(identities) == [i for i in range(13) if i != 10]


def test_identity_sampler_same_batches_for_any_process_count_and_exact_resume():
    for epoch in range(2):
        one, _ = _identity_batches(8, 1, epoch)
        two, ranks = _identity_batches(4, 2, epoch)
        assert two == one
        for rank_batches in ranks:                                 # each rank holds one whole identity (K images)
            assert all(len(set(LABELS[batch])) == 1 for batch in rank_batches)
        for start in (1, 4, 6):
            assert _identity_batches(4, 2, epoch, start_batch=start)[0] == one[start:]
    assert _identity_batches(8, 1, 0)[0] != _identity_batches(8, 1, 1)[0]
    with pytest.raises(ToolkitError, match="batch_size 6 must be a multiple of triplet.images_per_identity 4"):
        IdentityBatchSampler(LABELS, 6, 4)
    with pytest.raises(ToolkitError, match="12 identities with >= 2 images, need 16 per global batch"):
        IdentityBatchSampler(LABELS, 16, 4, world_size=4)
