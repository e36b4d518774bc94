"""The validation split a run holds out: seeded by --seed, or by --split-seed alone so that ensemble members of
different seeds are compared and calibrated on the same images."""

from __future__ import annotations

from conftest import write_tree
from emolens.data import load_dataset
from emolens.train.config import TrainConfig
from emolens.train.data import prepare_splits


def held_out(dataset, config):
    train, val, _ = prepare_splits(dataset, config)
    assert not set(train.names) & set(val.names)
    return sorted(val.names)


def test_split_seed_fixes_the_held_out_images_whatever_the_seed(tmp_path):
    dataset = load_dataset(write_tree(tmp_path / "data", {"train": 20}))
    seed_zero = held_out(dataset, TrainConfig(val_split=0.3))
    assert held_out(dataset, TrainConfig(val_split=0.3, seed=1)) != seed_zero
    assert held_out(dataset, TrainConfig(val_split=0.3, seed=1, split_seed=0)) == seed_zero
    assert held_out(dataset, TrainConfig(val_split=0.3, seed=0, split_seed=1)) != seed_zero


def test_split_seed_also_seeds_the_limit_sampling(tmp_path):
    dataset = load_dataset(write_tree(tmp_path / "data", {"train": 20}))
    seed_zero = prepare_splits(dataset, TrainConfig(val_split=0.3, limit=4))[0].names
    assert prepare_splits(dataset, TrainConfig(val_split=0.3, limit=4, seed=1, split_seed=0))[0].names == seed_zero


def test_the_cli_flag_reaches_the_config_and_survives_a_round_trip():
    from emolens.cli import build_parser
    from emolens.cli.training import _train_config

    config = _train_config(
        build_parser().parse_args(["train", "data", "--recipe", "ferplus", "--seed", "2", "--split-seed", "0"])
    )
    assert (config.seed, config.split_seed) == (2, 0)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig.from_dict({k: v for k, v in config.to_dict().items() if k != "split_seed"}).split_seed is None
