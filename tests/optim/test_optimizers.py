"""Optimizers follow PyTorch's trajectories (50 steps of a float64 MLP, 1e-8 relative)."""

from __future__ import annotations

import pytest

from ._parity import assert_same_trajectory

torch = pytest.importorskip("torch")

CONFIGS = {
    "sgd": lambda lib, ps: lib.optim.SGD(ps, lr=0.1),
    "sgd-momentum": lambda lib, ps: lib.optim.SGD(ps, lr=0.05, momentum=0.9),
    "sgd-dampening": lambda lib, ps: lib.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.3),
    "sgd-nesterov-wd": lambda lib, ps: lib.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True,
                                                     weight_decay=0.01),
    "sgd-maximize": lambda lib, ps: lib.optim.SGD(ps, lr=0.01, momentum=0.5, maximize=True),
    "adam": lambda lib, ps: lib.optim.Adam(ps, lr=0.01),
    "adam-amsgrad-wd": lambda lib, ps: lib.optim.Adam(ps, lr=0.01, amsgrad=True, weight_decay=0.1),
    "adam-betas-eps-maximize": lambda lib, ps: lib.optim.Adam(ps, lr=0.005, betas=(0.8, 0.95),
                                                              eps=1e-4, maximize=True),
    "adamw": lambda lib, ps: lib.optim.AdamW(ps, lr=0.01),
    "adamw-amsgrad": lambda lib, ps: lib.optim.AdamW(ps, lr=0.01, weight_decay=0.1, amsgrad=True),
    "adagrad": lambda lib, ps: lib.optim.Adagrad(ps, lr=0.1),
    "adagrad-options": lambda lib, ps: lib.optim.Adagrad(ps, lr=0.1, lr_decay=0.05,
                                                         initial_accumulator_value=0.1,
                                                         weight_decay=0.01, eps=1e-6),
    "adagrad-maximize": lambda lib, ps: lib.optim.Adagrad(ps, lr=0.01, maximize=True),
    "rmsprop": lambda lib, ps: lib.optim.RMSprop(ps, lr=0.01),
    "rmsprop-centered": lambda lib, ps: lib.optim.RMSprop(ps, lr=0.01, centered=True),
    "rmsprop-momentum": lambda lib, ps: lib.optim.RMSprop(ps, lr=0.005, momentum=0.9, alpha=0.9),
    "rmsprop-all": lambda lib, ps: lib.optim.RMSprop(ps, lr=0.005, momentum=0.5, centered=True,
                                                     weight_decay=0.01, maximize=True),
    "param-groups": lambda lib, ps: lib.optim.Adam(
        [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.003, "betas": (0.5, 0.9)}], lr=0.01),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_trajectory_matches_torch(name):
    assert_same_trajectory(CONFIGS[name])


LBFGS_CONFIGS = {
    "lbfgs": lambda lib, ps: lib.optim.LBFGS(ps, lr=0.5, max_iter=5, history_size=4),
    "lbfgs-strong-wolfe": lambda lib, ps: lib.optim.LBFGS(ps, max_iter=5, history_size=4,
                                                          line_search_fn="strong_wolfe"),
}


@pytest.mark.parametrize("name", LBFGS_CONFIGS)
def test_lbfgs_trajectory_matches_torch(name):
    # 10 outer steps of up to 5 iterations: 50 L-BFGS iterations in all
    assert_same_trajectory(LBFGS_CONFIGS[name], steps=10)
