"""Schedulers set the same learning rates as PyTorch's, step by step, and the trained
parameters follow PyTorch's (50 steps of SGD with momentum on a float64 MLP)."""

from __future__ import annotations

import warnings

import pytest

import chainrule
from chainrule.optim import SGD, Adam
from chainrule.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

from ._parity import assert_same_trajectory

torch = pytest.importorskip("torch")


def sgd(lib, ps):
    return lib.optim.SGD([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.02}], lr=0.05,
                         momentum=0.9)


def sequential(lib, opt):
    s = lib.optim.lr_scheduler
    warmup = s.LinearLR(opt, start_factor=0.2, total_iters=8)
    decay = s.ExponentialLR(opt, gamma=0.95)
    return s.SequentialLR(opt, schedulers=[warmup, decay], milestones=[10])


SCHEDULERS = {
    "step": lambda lib, opt: lib.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.5),
    "multistep": lambda lib, opt: lib.optim.lr_scheduler.MultiStepLR(opt, [5, 20, 20, 33], 0.5),
    "exponential": lambda lib, opt: lib.optim.lr_scheduler.ExponentialLR(opt, gamma=0.93),
    "cosine": lambda lib, opt: lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=15,
                                                                        eta_min=1e-3),
    "linear": lambda lib, opt: lib.optim.lr_scheduler.LinearLR(opt, start_factor=0.1,
                                                               end_factor=0.9, total_iters=30),
    "lambda": lambda lib, opt: lib.optim.lr_scheduler.LambdaLR(
        opt, [lambda e: 1 / (1 + e), lambda e: 0.97**e]),
    "onecycle": lambda lib, opt: lib.optim.lr_scheduler.OneCycleLR(opt, max_lr=[0.1, 0.05],
                                                                   total_steps=50),
    "onecycle-linear-3phase": lambda lib, opt: lib.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=0.1, epochs=5, steps_per_epoch=10, anneal_strategy="linear", three_phase=True,
        pct_start=0.25),
    "sequential": sequential,
}


@pytest.mark.parametrize("name", SCHEDULERS)
def test_schedule_matches_torch(name):
    assert_same_trajectory(sgd, SCHEDULERS[name])


def test_onecycle_cycles_adam_beta1_like_torch():
    adam = lambda lib, ps: lib.optim.Adam(ps, lr=0.01)  # noqa: E731
    assert_same_trajectory(adam, lambda lib, opt: lib.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=0.05, total_steps=50, pct_start=0.2))


def test_reduce_on_plateau_matches_torch():
    def plateau(lib, opt):
        # a large relative threshold makes most epochs count as bad
        return lib.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2,
                                                        threshold=0.05, cooldown=1, min_lr=1e-3)
    assert_same_trajectory(sgd, plateau, plateau=True)


def _opt(lr=0.1):
    w = chainrule.zeros(2, requires_grad=True)
    return SGD([w], lr=lr, momentum=0.9)


def _step(opt, sched, n):
    for _ in range(n):
        opt.step()
        sched.step()


@pytest.mark.parametrize("name", [n for n in SCHEDULERS if n != "lambda"])
def test_state_dict_round_trip_resumes(name, tmp_path):
    make = SCHEDULERS[name]
    opt = sgd(chainrule, [chainrule.zeros(1, requires_grad=True) for _ in range(4)])
    sched = make(chainrule, opt)
    _step(opt, sched, 12)
    chainrule.save(sched.state_dict(), tmp_path / "sched.safetensors")
    chainrule.save(opt.state_dict(), tmp_path / "opt.safetensors")
    expected = []
    for _ in range(20):
        opt.step()
        sched.step()
        expected.append(sched.get_last_lr())

    opt2 = sgd(chainrule, [chainrule.zeros(1, requires_grad=True) for _ in range(4)])
    sched2 = make(chainrule, opt2)
    opt2.load_state_dict(chainrule.load(tmp_path / "opt.safetensors"))
    sched2.load_state_dict(chainrule.load(tmp_path / "sched.safetensors"))
    resumed = []
    for _ in range(20):
        opt2.step()
        sched2.step()
        resumed.append(sched2.get_last_lr())
    assert resumed == expected


def test_lambda_state_dict_keeps_callable_objects_state():
    class Decay:
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, epoch):
            return self.rate**epoch

    opt = _opt()
    sched = LambdaLR(opt, Decay(0.5))
    state = sched.state_dict()
    assert state["lr_lambdas"] == [{"rate": 0.5}]
    other = LambdaLR(_opt(), Decay(0.9))
    other.load_state_dict(state)
    assert other.lr_lambdas[0].rate == 0.5
    plain = LambdaLR(_opt(), lambda e: 1.0).state_dict()
    assert plain["lr_lambdas"] == [None]


def test_reduce_on_plateau_state_round_trip(tmp_path):
    opt = _opt()
    sched = ReduceLROnPlateau(opt, mode="max", patience=0)
    for metric in [1.0, 0.5, 0.4]:
        sched.step(metric)
    chainrule.save(sched.state_dict(), tmp_path / "p.safetensors")
    other = ReduceLROnPlateau(_opt(), mode="min")
    other.load_state_dict(chainrule.load(tmp_path / "p.safetensors"))
    assert (other.mode, other.best, other.mode_worse) == ("max", 1.0, float("-inf"))
    assert other.get_last_lr() == sched.get_last_lr()


def test_get_last_lr_and_initial_lr():
    opt = _opt(0.1)
    sched = StepLR(opt, step_size=2, gamma=0.1)
    assert sched.get_last_lr() == [0.1]
    assert opt.param_groups[0]["initial_lr"] == 0.1
    _step(opt, sched, 2)
    assert sched.get_last_lr() == pytest.approx([0.01])


def test_scheduler_step_before_optimizer_step_warns():
    opt = _opt()
    sched = ExponentialLR(opt, gamma=0.5)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
    opt2 = _opt()
    sched2 = ExponentialLR(opt2, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt2.step()
        sched2.step()


def test_closed_form_with_epoch_argument_matches_torch():
    ours = MultiStepLR(_opt(), milestones=[2, 4], gamma=0.5)
    w = torch.zeros(2, requires_grad=True)
    theirs = torch.optim.lr_scheduler.MultiStepLR(torch.optim.SGD([w], lr=0.1), [2, 4], 0.5)
    with pytest.warns(UserWarning):
        ours.step(5)
    with pytest.warns(UserWarning):
        theirs.step(5)
    assert ours.get_last_lr() == theirs.get_last_lr()


@pytest.mark.parametrize("make, message", [
    (lambda opt: LinearLR(opt, start_factor=0), "Starting multiplicative factor"),
    (lambda opt: OneCycleLR(opt, max_lr=0.1), "total_steps OR"),
    (lambda opt: OneCycleLR(opt, max_lr=[0.1, 0.2], total_steps=5), "same length"),
    (lambda opt: ReduceLROnPlateau(opt, factor=1.0), "Factor should be < 1.0"),
    (lambda opt: ReduceLROnPlateau(opt, mode="up"), "mode up is unknown"),
    (lambda opt: SequentialLR(opt, [ExponentialLR(opt, 0.5)], milestones=[3]), "one more"),
    (lambda opt: CosineAnnealingLR(opt, T_max=5, last_epoch=3), "initial_lr"),
    (lambda opt: StepLR(object(), step_size=1), "is not an Optimizer"),
])
def test_errors(make, message):
    with pytest.raises((ValueError, KeyError, TypeError), match=message):
        make(_opt())


def test_onecycle_past_total_steps_raises():
    opt = _opt()
    sched = OneCycleLR(opt, max_lr=0.1, total_steps=3)
    _step(opt, sched, 3)
    with pytest.raises(ValueError, match="Tried to step 4 times"):
        sched.step()


def test_onecycle_needs_momentum_or_betas():
    opt = chainrule.optim.Adagrad([chainrule.zeros(1, requires_grad=True)])
    with pytest.raises(ValueError, match="momentum or beta1"):
        OneCycleLR(opt, max_lr=0.1, total_steps=5)
    OneCycleLR(Adam([chainrule.zeros(1, requires_grad=True)]), max_lr=0.1, total_steps=5)
