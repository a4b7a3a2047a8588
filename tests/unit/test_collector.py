"""The batch-consumer tuning of the garbage collector is undone exactly."""

from __future__ import annotations

import gc

from consumers.collector import BATCH_THRESHOLDS, restore, tune_for_batches


def test_tuning_freezes_the_heap_raises_the_thresholds_and_restore_undoes_both() -> None:
    before = gc.get_threshold()
    previous = tune_for_batches()
    try:
        assert previous == before
        assert gc.get_threshold() == BATCH_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        restore(previous)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
