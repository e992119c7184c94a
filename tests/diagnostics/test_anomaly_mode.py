"""Anomaly mode: the first NaN/Inf raises naming the op and the user's line; off, nothing
of it is left on the hot path; on without anomalies, results are the plain run's."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
from chainrule.autograd import anomaly_mode, detect_anomaly, engine, is_anomaly_enabled, set_detect_anomaly
from chainrule.autograd.anomaly_mode import AnomalyError
from chainrule.ops import _primitive

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's log(0) warning


def _line() -> int:
    """The caller's line number."""
    return inspect.currentframe().f_back.f_lineno


def _is_off() -> bool:
    """Nothing of anomaly mode left on the hot path: plain op call, plain Function.apply,
    no engine hook."""
    apply = cr.autograd.Function.__dict__["apply"].__func__
    return (_primitive.Primitive.__call__ is _primitive.apply and engine.anomaly_hook is None
            and apply.__qualname__ == "Function.apply")


def test_log_of_zero_in_forward_names_the_op_and_the_line():
    x = cr.tensor([1.0, 0.0, 2.0], requires_grad=True)
    with pytest.raises(AnomalyError) as info, detect_anomaly():
        line = _line() + 1
        x.log()
    error = info.value
    assert error.phase == "forward" and error.op == "log" and error.shapes == ((3,),)
    assert error.location == (__file__, line, "test_log_of_zero_in_forward_names_the_op_and_the_line")
    message = str(error)
    assert "log produced -inf" in message and "float32[3]" in message
    assert f"{__file__}:{line}" in message and "x.log()" in message
    assert _is_off()


def test_sqrt_at_zero_in_backward_names_the_op_and_the_forward_line():
    x = cr.tensor([4.0, 0.0], requires_grad=True)
    with pytest.raises(AnomalyError) as info, detect_anomaly():
        y = x.sqrt()
        line = _line() - 1
        (y * 2.0).sum().backward()
    error = info.value
    assert error.phase == "backward" and error.op == "SqrtBackward0"
    assert "Function 'SqrtBackward0' returned inf values in its 0th output" in str(error)
    assert error.location[:2] == (__file__, line) and "y = x.sqrt()" in str(error)
    assert "".join(error.forward_traceback.format())  # the whole forward stack is attached
    assert x.grad is None  # raised before anything reached the leaf


def test_backward_only_mode_leaves_the_forward_alone():
    x = cr.tensor([0.0], requires_grad=True)
    with detect_anomaly(check_forward=False):
        assert _primitive.Primitive.__call__ is _primitive.apply  # nothing swapped in forward
        y = x.log()  # -inf: not checked
        assert is_anomaly_enabled()
        with pytest.raises(AnomalyError, match="LogBackward0.*recorded only while"):
            y.sum().backward()
    assert _is_off()


def test_a_nan_is_blamed_on_the_op_that_made_it_not_the_ones_after():
    x = cr.tensor([1.0, -1.0], requires_grad=True)
    with detect_anomaly(), pytest.raises(AnomalyError) as info:
        y = x * 0.0 + float("inf")  # inf made by add
    assert info.value.op == "add_scalar"
    with detect_anomaly():
        y = cr.tensor([np.inf, 1.0])
        z = (y * 2.0).exp()  # an inf that came in is not this op's doing
    assert np.isinf(z.numpy()[0])


def test_custom_function_backward_is_checked_and_located():
    class Bad(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * float("nan")

    x = cr.tensor([1.0], requires_grad=True)
    with detect_anomaly(), pytest.raises(AnomalyError) as info:
        Bad.apply(x).sum().backward()
    # the op inside backward that made the NaN, at its line in the user's backward
    assert info.value.op == "mul_scalar" and info.value.location[2] == "backward"
    with detect_anomaly(check_forward=False), pytest.raises(AnomalyError) as info:
        Bad.apply(x).sum().backward()
    assert info.value.op == "BadBackward" and "nan values" in str(info.value)
    with detect_anomaly(), pytest.raises(AnomalyError) as info:
        y = Bad.apply(x)
        line = _line() - 1
        with cr.autograd.anomaly_mode.detect_anomaly(check_forward=False):
            y.sum().backward()
    assert info.value.op == "BadBackward" and info.value.location[1] == line


def test_a_run_without_anomalies_matches_the_plain_run():
    def step():
        cr.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
        x = cr.randn(8, 6)
        loss = nn.functional.cross_entropy(model(x), cr.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
        loss.backward()
        return [loss.detach().numpy().copy()] + [p.grad.numpy().copy() for p in model.parameters()]

    plain = step()
    with detect_anomaly():
        checked = step()
    decorated = detect_anomaly()(step)()
    for a, b, c in zip(plain, checked, decorated):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert _is_off()


def test_switching_nests_and_restores_the_hot_path():
    assert not is_anomaly_enabled() and _is_off()
    set_detect_anomaly(True)
    try:
        assert is_anomaly_enabled() and _primitive.Primitive.__call__ is not _primitive.apply
        with detect_anomaly(check_forward=False):
            assert _primitive.Primitive.__call__ is _primitive.apply
        assert _primitive.Primitive.__call__ is not _primitive.apply
        with detect_anomaly(check_nan=False):  # records where ops were made, raises nothing
            cr.tensor([0.0], requires_grad=True).log()
        with set_detect_anomaly(False):  # as a context manager, the setting comes back after
            assert _is_off()
        assert is_anomaly_enabled()
    finally:
        set_detect_anomaly(False)
    assert not is_anomaly_enabled() and _is_off() and not anomaly_mode._created_at
