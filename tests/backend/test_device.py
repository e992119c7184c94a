"""Devices: chainrule.device, device= on factories, Tensor.to/.cpu/.cuda, moves that
carry gradients, the error for mixing devices, and CUDA without CuPy. The second device is
``array_api_strict`` (array-api-strict arrays inside the tensors), standing in for a GPU.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd import gradcheck, gradgradcheck

STRICT = "array_api_strict"
HAS_CUPY = importlib.util.find_spec("cupy") is not None


# ------------------------------------------------------------------ chainrule.device
def test_device_parses_compares_and_prints_as_torch():
    assert cr.device("cuda:1").type == "cuda" and cr.device("cuda:1").index == 1
    assert cr.device("cuda", 0) == cr.device("cuda:0") != cr.device("cuda")
    assert cr.device("cpu") == "cpu" and cr.device(cr.device("cpu")) == cr.device("cpu")
    assert repr(cr.device("cuda:1")) == "device(type='cuda', index=1)"
    assert repr(cr.device("cpu")) == "device(type='cpu')"
    assert str(cr.device("cuda", 2)) == "cuda:2" and str(cr.device(STRICT)) == STRICT
    assert len({cr.device("cpu"), cr.device("cpu"), cr.device("cuda:0")}) == 2


@pytest.mark.parametrize("text", ["gpu", "cuda:x", "cuda:-1", ""])
def test_device_refuses_unknown_names(text):
    with pytest.raises(RuntimeError):
        cr.device(text)


# ------------------------------------------------------------------ factories
FACTORIES = {
    "tensor": lambda d: cr.tensor([[1.0, 2.0]], device=d),
    "as_tensor": lambda d: cr.as_tensor(np.ones(3), device=d),
    "zeros": lambda d: cr.zeros(2, 3, device=d),
    "ones": lambda d: cr.ones(2, device=d),
    "empty": lambda d: cr.empty(4, device=d),
    "full": lambda d: cr.full((2,), 1.5, device=d),
    "arange": lambda d: cr.arange(5, device=d),
    "linspace": lambda d: cr.linspace(0, 1, 4, device=d),
    "eye": lambda d: cr.eye(3, device=d),
    "rand": lambda d: cr.rand(3, device=d),
    "randn": lambda d: cr.randn(3, device=d),
    "randint": lambda d: cr.randint(0, 5, (3,), device=d),
    "randperm": lambda d: cr.randperm(4, device=d),
}


@pytest.mark.parametrize("name", list(FACTORIES))
def test_every_factory_honours_device(name):
    cr.manual_seed(0)
    on_cpu = FACTORIES[name]("cpu")
    cr.manual_seed(0)
    moved = FACTORIES[name](STRICT)
    assert on_cpu.device == cr.device("cpu") and moved.device == cr.device(STRICT)
    assert moved.dtype == on_cpu.dtype and moved.shape == on_cpu.shape
    if name != "empty":  # the same seed gives the same numbers on every device
        np.testing.assert_array_equal(moved.cpu().numpy(), on_cpu.numpy())


def test_like_and_new_factories_follow_the_input_device():
    x = cr.ones(2, 3, device=STRICT)
    for made in (cr.zeros_like(x), cr.ones_like(x), cr.empty_like(x), cr.full_like(x, 2.0),
                 cr.rand_like(x), cr.randn_like(x), x.new_zeros(2), x.new_ones(2),
                 x.new_full((2,), 3.0), x.new_tensor([1.0])):
        assert made.device == cr.device(STRICT)
    assert cr.zeros_like(x, device="cpu").device == cr.device("cpu")


def test_set_default_device_places_new_tensors():
    try:
        cr.set_default_device(STRICT)
        assert cr.get_default_device() == cr.device(STRICT)
        assert cr.zeros(2).device == cr.device(STRICT)
        assert cr.tensor([1.0]).device == cr.device(STRICT)
    finally:
        cr.set_default_device(None)
    assert cr.zeros(2).device == cr.device("cpu")


# ------------------------------------------------------------------ moves
def test_to_moves_casts_and_returns_itself_when_nothing_changes():
    x = cr.arange(4, dtype=cr.float32)
    assert x.to("cpu") is x and x.cpu() is x and x.to(x) is x
    y = x.to(STRICT)
    assert y.device == cr.device(STRICT) and y.dtype == cr.float32
    z = x.to(STRICT, cr.float64)
    assert z.device == cr.device(STRICT) and z.dtype == cr.float64
    w = cr.ones(1, dtype=cr.float64, device=STRICT)
    assert x.to(w).device == w.device and x.to(w).dtype == cr.float64
    assert x.to(device=STRICT, dtype=cr.float64).dtype == cr.float64
    np.testing.assert_array_equal(y.cpu().numpy(), x.numpy())
    assert x.to(STRICT, copy=True) is not x


def test_a_move_is_differentiable_both_ways():
    x = cr.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x.to(STRICT)
    assert y.grad_fn.name() == "ToCopyBackward0"
    (y * y).sum().backward()
    assert x.grad.device == cr.device("cpu")  # the gradient goes back to the source device
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, -4.0, 6.0])

    s = cr.tensor([0.5, 1.5], device=STRICT, requires_grad=True)
    (s.cpu() ** 3).sum().backward()
    assert s.grad.device == cr.device(STRICT)
    np.testing.assert_allclose(s.grad.cpu().numpy(), [0.75, 6.75])


def test_moves_pass_gradcheck_to_second_order():
    x = cr.tensor([0.3, -1.2, 2.0], dtype=cr.float64, requires_grad=True)
    assert gradcheck(lambda t: t.to(STRICT).exp().cpu() * t, (x,))
    assert gradgradcheck(lambda t: (t.to(STRICT) ** 3).sum().cpu(), (x,))


def test_mixing_devices_names_the_op_and_both_devices():
    a, b = cr.ones(3), cr.ones(3, device=STRICT)
    with pytest.raises(RuntimeError, match=r"add\(\).*cpu and array_api_strict"):
        a + b
    with pytest.raises(RuntimeError, match=r"matmul\(\).*array_api_strict and cpu"):
        b @ a
    with pytest.raises(RuntimeError, match="same device"):
        cr.cat([a, b])


def test_a_non_cpu_tensor_refuses_numpy_and_prints_its_device():
    x = cr.tensor([1.0, 2.0], device=STRICT)
    with pytest.raises(TypeError, match=r"\.cpu\(\)"):
        x.numpy()
    assert repr(x) == "tensor([1., 2.], device='array_api_strict')"
    assert x.tolist() == [1.0, 2.0] and x.sum().item() == 3.0 and not x.is_cuda


# ------------------------------------------------------------------ CUDA without CuPy
@pytest.mark.skipif(HAS_CUPY, reason="CuPy is installed here")
def test_without_cupy_cuda_is_unavailable_and_says_how_to_install():
    assert not cr.cuda.is_available() and cr.cuda.device_count() == 0
    for attempt in (lambda: cr.ones(2).cuda(), lambda: cr.ones(2, device="cuda"),
                    lambda: cr.ones(2).to("cuda:0"), lambda: cr.nn.Linear(2, 2).cuda(),
                    lambda: cr.nn.Linear(2, 2).to("cuda"), cr.cuda.synchronize):
        with pytest.raises(RuntimeError, match=r"pip install 'chainrule\[cuda\]'"):
            attempt()


def test_cuda_seeding_leaves_the_cpu_stream_alone():
    cr.manual_seed(3)
    expected = cr.rand(4)
    cr.manual_seed(3)
    cr.cuda.manual_seed(11)
    cr.cuda.manual_seed_all(11)
    np.testing.assert_array_equal(cr.rand(4).numpy(), expected.numpy())
    assert cr.cuda.initial_seed() == 11


def test_one_backward_over_roots_on_two_devices():
    a = cr.ones(2, requires_grad=True)
    b = cr.ones(2, device=STRICT, requires_grad=True)
    cr.autograd.backward([(a * 2).sum(), (b.exp() * 3).sum()])
    assert a.grad.tolist() == [2.0, 2.0] and a.grad.device == cr.device("cpu")
    np.testing.assert_allclose(b.grad.cpu().numpy(), 3 * np.e)
    assert b.grad.device == cr.device(STRICT)


@pytest.mark.parametrize("name, fn, data", [
    ("prod with zeros", lambda x: x.prod(1), [[0.0, 2.0, 3.0], [1.5, 0.0, 0.0]]),
    ("cat with an empty piece", lambda x: cr.cat([x, x[:, :0], x * x], 1), [[1.0, 2.0], [3.0, 4.0]]),
])
def test_second_order_constants_follow_the_gradient_device(name, fn, data):
    # the default device stays the CPU: zeros and eyes made inside the rules under
    # create_graph must land on the gradient's device, not the default one
    grads = []
    for device in ("cpu", STRICT):
        x = cr.tensor(data, dtype=cr.float64, device=device, requires_grad=True)
        (g,) = cr.autograd.grad((fn(x) ** 2).sum(), x, create_graph=True)
        (h,) = cr.autograd.grad((g * g).sum(), x)
        assert h.device == cr.device(device), name
        grads.append(h.cpu().numpy())
    np.testing.assert_allclose(*grads, rtol=1e-12, atol=1e-12)
