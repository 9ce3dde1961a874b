"""tfg.data: TensorDataset, DataLoader batching, drop_last, shuffle determinism
(own seed and tfg.manual_seed), a new order each epoch, collation of generic
map-style datasets, and bad arguments."""
import numpy as np
import pytest

import tensorforge as tfg
from tensorforge.data import DataLoader, TensorDataset


def make_dataset(n=10):
    x = tfg.tensor(np.arange(n * 3, dtype=np.float32).reshape(n, 3))
    y = tfg.tensor(np.arange(n, dtype=np.int64))
    return TensorDataset(x, y)


def batch_labels(loader):
    return [y.numpy().tolist() for _, y in loader]


def epoch_order(loader):
    return np.concatenate([y.numpy() for _, y in loader])


def test_tensor_dataset_items_and_len():
    ds = make_dataset(4)
    assert len(ds) == 4
    x, y = ds[2]
    np.testing.assert_array_equal(x.numpy(), [6, 7, 8])
    assert y.item() == 2


def test_tensor_dataset_size_mismatch():
    with pytest.raises(ValueError, match=r"\[4, 3\]"):
        TensorDataset(tfg.zeros(4, 2), tfg.zeros(3))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()
    with pytest.raises(TypeError, match="argument 1"):
        TensorDataset(tfg.zeros(3), [1, 2, 3])


def test_tensor_dataset_accepts_numpy():
    a = np.arange(5.0)
    ds = TensorDataset(a)
    assert ds[3][0].item() == 3.0


def test_batches_in_order():
    loader = DataLoader(make_dataset(10), batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(4, 3), (4, 3), (2, 3)]
    assert batch_labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    np.testing.assert_array_equal(batches[1][0].numpy(), np.arange(12, 24).reshape(4, 3))
    x, y = batches[0]
    assert x.dtype == tfg.float32 and y.dtype == tfg.int64


def test_drop_last():
    loader = DataLoader(make_dataset(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert batch_labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    exact = DataLoader(make_dataset(8), batch_size=4, drop_last=True)
    assert len(exact) == 2 and len(list(exact)) == 2
    short = DataLoader(make_dataset(3), batch_size=4, drop_last=True)
    assert len(short) == 0 and list(short) == []


def test_default_batch_size_is_one():
    loader = DataLoader(make_dataset(3))
    assert len(loader) == 3
    assert batch_labels(loader) == [[0], [1], [2]]


def test_batches_do_not_require_grad_and_are_copies():
    x = tfg.tensor(np.ones((6, 2)), requires_grad=True)
    loader = DataLoader(TensorDataset(x), batch_size=4)
    (first,) = next(iter(loader))
    assert not first.requires_grad
    first.numpy()[:] = 5.0
    np.testing.assert_array_equal(x.detach().numpy(), np.ones((6, 2)))


def test_shuffle_with_seed_is_reproducible():
    ds = make_dataset(50)
    a = DataLoader(ds, batch_size=8, shuffle=True, seed=123)
    b = DataLoader(ds, batch_size=8, shuffle=True, seed=123)
    for _ in range(3):
        np.testing.assert_array_equal(epoch_order(a), epoch_order(b))
    same = DataLoader(ds, batch_size=8, shuffle=True, seed=123)
    other = DataLoader(ds, batch_size=8, shuffle=True, seed=124)
    assert not np.array_equal(epoch_order(same), epoch_order(other))


def test_shuffle_is_a_permutation_and_rows_stay_paired():
    ds = make_dataset(23)
    loader = DataLoader(ds, batch_size=5, shuffle=True, seed=0)
    order = epoch_order(loader)
    assert sorted(order.tolist()) == list(range(23))
    assert not np.array_equal(order, np.arange(23))
    for x, y in loader:
        np.testing.assert_array_equal(x.numpy()[:, 0], y.numpy() * 3)


def test_each_epoch_draws_a_new_order():
    loader = DataLoader(make_dataset(40), batch_size=40, shuffle=True, seed=7)
    orders = [epoch_order(loader) for _ in range(3)]
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[1], orders[2])
    # the order is drawn when iter() is called, not at the first batch
    first, second = iter(loader), iter(loader)
    assert not np.array_equal(next(second)[1].numpy(), next(first)[1].numpy())


def test_manual_seed_makes_the_order_reproducible():
    ds = make_dataset(30)

    def run():
        tfg.manual_seed(2024)
        loader = DataLoader(ds, batch_size=7, shuffle=True)
        return [epoch_order(loader) for _ in range(2)]

    first, second = run(), run()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])
    tfg.manual_seed(2025)
    other = epoch_order(DataLoader(ds, batch_size=7, shuffle=True))
    assert not np.array_equal(first[0], other)


def test_loader_without_shuffle_leaves_the_default_generator_alone():
    tfg.manual_seed(5)
    expected = tfg.rand(4).numpy().copy()
    tfg.manual_seed(5)
    list(DataLoader(make_dataset(6), batch_size=4))
    np.testing.assert_array_equal(tfg.rand(4).numpy(), expected)


class SquaresDataset:
    """Generic map-style dataset: (array feature, Tensor, int label, float weight)."""

    def __len__(self):
        return 7

    def __getitem__(self, i):
        return np.array([i, i * i], dtype=np.float32), tfg.tensor([float(i)]), i % 3, 0.5 * i


def test_generic_dataset_collation():
    loader = DataLoader(SquaresDataset(), batch_size=3)
    assert len(loader) == 3
    batches = list(loader)
    feats, column, labels, weights = batches[1]
    np.testing.assert_array_equal(feats.numpy(), [[3, 9], [4, 16], [5, 25]])
    assert feats.dtype == tfg.float32
    np.testing.assert_array_equal(column.numpy(), [[3.0], [4.0], [5.0]])
    np.testing.assert_array_equal(labels.numpy(), [0, 1, 2])
    assert labels.dtype == tfg.int64
    np.testing.assert_array_equal(weights.numpy(), [1.5, 2.0, 2.5])
    assert weights.dtype == tfg.float64
    assert batches[2][0].shape == (1, 2)
    for field in batches[0]:
        assert isinstance(field, tfg.Tensor) and not field.requires_grad


def test_generic_dataset_shuffle_matches_tensor_dataset_order():
    # the same seed gives the same permutation whichever way the batch is built
    n = 12
    generic = [(np.array([float(i)]), i) for i in range(n)]  # a list is a map-style dataset
    ds = TensorDataset(tfg.tensor(np.arange(n, dtype=np.float64)[:, None]), tfg.tensor(np.arange(n)))
    a = [y.numpy().tolist() for _, y in DataLoader(generic, batch_size=5, shuffle=True, seed=9)]
    b = [y.numpy().tolist() for _, y in DataLoader(ds, batch_size=5, shuffle=True, seed=9)]
    assert a == b


def test_generic_dataset_single_tensor_and_dict_samples():
    tensors = [tfg.tensor([float(i), -float(i)]) for i in range(5)]
    (batch,) = list(DataLoader(tensors, batch_size=5))
    np.testing.assert_array_equal(batch.numpy()[:, 1], -np.arange(5.0))
    dicts = [{"x": np.full(2, i, dtype=np.float32), "y": i} for i in range(4)]
    first = next(iter(DataLoader(dicts, batch_size=3)))
    assert set(first) == {"x", "y"}
    np.testing.assert_array_equal(first["y"].numpy(), [0, 1, 2])


def test_generic_dataset_bad_samples():
    with pytest.raises(TypeError, match="cannot batch"):
        list(DataLoader(["a", "b"], batch_size=2))
    with pytest.raises(ValueError, match="numbers of fields"):
        list(DataLoader([(1, 2), (3,)], batch_size=2))


def test_bad_arguments():
    ds = make_dataset(4)
    for bad in (0, -2):
        with pytest.raises(ValueError, match="batch_size"):
            DataLoader(ds, batch_size=bad)
    for bad in (2.0, "4", True, None):
        with pytest.raises(TypeError, match="batch_size"):
            DataLoader(ds, batch_size=bad)
    with pytest.raises(TypeError, match="shuffle"):
        DataLoader(ds, shuffle="yes")
    with pytest.raises(TypeError, match="drop_last"):
        DataLoader(ds, drop_last=1)
    with pytest.raises(TypeError, match="seed"):
        DataLoader(ds, seed=1.5)
    with pytest.raises(ValueError, match="seed"):
        DataLoader(ds, seed=-1)
    with pytest.raises(TypeError, match="__len__"):
        DataLoader(iter(range(3)))
