"""`trainer.deterministic=true` plus a seed: two runs give bit-identical metrics and logs on CPU."""

from pathlib import Path

from rnnexp.data.batching import EpochBatchSampler
from rnnexp.training import train
from tests.conftest import compose_config
from tests.resilience import TINY_RUN, reference_run, same_results


def test_same_seed_gives_bit_identical_metrics_and_logs(tmp_path, tmp_path_factory):
    # TINY_RUN has trainer.deterministic=true; the root config's seed is 42.
    reference, reference_dir = reference_run(tmp_path_factory)
    again, _ = train(compose_config([*TINY_RUN, "seed=42"], tmp_path / "again"))
    other, _ = train(compose_config([*TINY_RUN, "seed=43"], tmp_path / "other"))
    assert same_results(again, reference)
    csv = Path("csv") / "metrics.csv"
    assert (tmp_path / "again" / csv).read_text() == (reference_dir / csv).read_text()
    assert other["val"] != reference["val"]  # the seed does decide: weights, dropout and batch order


def test_the_batch_order_is_a_function_of_seed_and_epoch_only():
    def order(seed: int, epoch: int) -> list[list[int]]:
        sampler = EpochBatchSampler(size=20, batch_size=6, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        return [batch.tolist() for batch in sampler]

    assert order(1, 0) == order(1, 0)
    assert order(1, 0) != order(1, 1) and order(1, 0) != order(2, 0)
    assert sorted(i for batch in order(1, 5) for i in batch) == list(range(20))
