"""GradScaler against torch.amp.GradScaler: the same planted gradients, step by step, give
the same scale, growth tracker, skipped steps and parameters."""

from __future__ import annotations

import io

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

# per iteration: where a non-finite value is planted in the gradients (None: all finite),
# and whether unscale_ is called by hand before clipping
PLAN = [
    (None, False), (None, True), ("inf", False), (None, False), ("nan", True),
    (None, False), (None, False), (None, True), (None, False), ("-inf", False),
    (None, False), (None, False), (None, False), (None, False), ("nan", False),
    ("inf", True), (None, False), (None, False), (None, False), (None, False),
]


def _models():
    weight = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    bias = np.zeros(3, dtype=np.float32)
    ours = cr.nn.Linear(4, 3)
    theirs = torch.nn.Linear(4, 3)
    with cr.no_grad(), torch.no_grad():
        ours.weight.copy_(cr.tensor(weight))
        ours.bias.copy_(cr.tensor(bias))
        theirs.weight.copy_(torch.tensor(weight))
        theirs.bias.copy_(torch.tensor(bias))
    return ours, theirs


def _iteration(lib, model, optimizer, scaler, x, y, plant, unscale_by_hand):
    optimizer.zero_grad()
    loss = lib.nn.functional.mse_loss(model(x), y)
    scaler.scale(loss).backward()
    if plant is not None:
        with lib.no_grad():
            model.weight.grad[1, 2] = float(plant)
    if unscale_by_hand:
        scaler.unscale_(optimizer)
        lib.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
    stepped = scaler.step(optimizer)
    scaler.update()
    return stepped


@pytest.mark.parametrize("settings", [
    dict(),  # PyTorch's defaults, with a short interval so that the scale grows
    dict(init_scale=3.0, growth_factor=1.7, backoff_factor=0.37),  # float32 rounding shows
    # growth past float32's max is refused (the scaled loss itself overflows: NumPy warns)
    pytest.param(dict(init_scale=2.0**127, growth_factor=4.0),
                 marks=pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")),
])
def test_scale_trajectory_matches_torch_step_by_step(settings):
    settings = {"growth_interval": 3, **settings}
    ours, theirs = _models()
    our_opt = cr.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    their_opt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    our_scaler = cr.amp.GradScaler("cpu", **settings)
    their_scaler = torch.amp.GradScaler("cpu", **settings)
    rng = np.random.default_rng(1)
    for step, (plant, by_hand) in enumerate(PLAN):
        x = rng.standard_normal((5, 4)).astype(np.float32)
        y = rng.standard_normal((5, 3)).astype(np.float32)
        our_weight_before = ours.weight.detach().clone()
        _iteration(cr, ours, our_opt, our_scaler, cr.tensor(x), cr.tensor(y), plant, by_hand)
        _iteration(torch, theirs, their_opt, their_scaler, torch.tensor(x), torch.tensor(y), plant,
                   by_hand)
        assert our_scaler.get_scale() == their_scaler.get_scale(), step
        assert our_scaler._get_growth_tracker() == their_scaler._get_growth_tracker(), step
        skipped = bool((ours.weight == our_weight_before).all())
        assert skipped == (plant is not None), step
        np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=f"step {step}")
    assert our_scaler.state_dict() == their_scaler.state_dict()


def test_unscale_divides_the_gradients_and_clipping_sees_them_unscaled():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    optimizer = cr.optim.SGD([w], lr=1.0)
    scaler = cr.amp.GradScaler(init_scale=1024.0)
    scaler.scale((w * w).sum()).backward()
    assert w.grad.tolist() == [2048.0, 4096.0]
    scaler.unscale_(optimizer)
    assert w.grad.tolist() == [2.0, 4.0] and w.grad.dtype == cr.float32
    scaler.step(optimizer)  # does not unscale a second time
    assert w.tolist() == [-1.0, -2.0]


def test_scale_of_several_outputs_keeps_their_container():
    scaler = cr.amp.GradScaler(init_scale=4.0)
    a, b = cr.tensor(1.0), cr.tensor(2.0)
    assert [t.item() for t in scaler.scale([a, b])] == [4.0, 8.0]
    assert isinstance(scaler.scale((a, b)), tuple)
    assert [t.item() for t in scaler.scale(iter([a]))] == [4.0]
    with pytest.raises(ValueError, match="Tensor or an iterable"):
        scaler.scale(3.0)


def test_misuse_raises_torchs_errors():
    w = cr.tensor([1.0], requires_grad=True)
    optimizer = cr.optim.SGD([w], lr=0.1)
    scaler = cr.amp.GradScaler()
    with pytest.raises(RuntimeError, match="did not use scaler.scale"):
        scaler.step(optimizer)
    scaler.scale(w.sum()).backward()
    scaler.unscale_(optimizer)
    with pytest.raises(RuntimeError, match="already been called on this optimizer"):
        scaler.unscale_(optimizer)
    scaler.step(optimizer)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        scaler.step(optimizer)
    with pytest.raises(RuntimeError, match="after step"):
        scaler.unscale_(optimizer)
    with pytest.raises(RuntimeError, match="Closure use is not currently supported"):
        scaler.step(optimizer, closure=lambda: 0.0)
    scaler.update()
    with pytest.raises(RuntimeError, match="No inf checks were recorded"):
        scaler.update()
    half = cr.tensor([1.0], dtype=cr.float16, requires_grad=True)
    half.grad = cr.tensor([1.0], dtype=cr.float16)
    with pytest.raises(ValueError, match="FP16 gradients"):
        scaler.unscale_(cr.optim.SGD([half], lr=0.1))
    with pytest.raises(ValueError, match="growth factor"):
        cr.amp.GradScaler(growth_factor=1.0)
    with pytest.raises(ValueError, match="backoff factor"):
        cr.amp.GradScaler(backoff_factor=1.0)


def test_update_with_a_new_scale():
    scaler = cr.amp.GradScaler()
    scaler.scale(cr.tensor(1.0))
    scaler.update(0.1)
    assert scaler.get_scale() == float(np.float32(0.1))  # stored as float32, as PyTorch
    scaler.update(cr.tensor([8.0]))
    assert scaler.get_scale() == 8.0
    with pytest.raises(ValueError, match="new_scale"):
        scaler.update(cr.tensor([1.0, 2.0]))


def test_disabled_scaler_passes_everything_through():
    w = cr.tensor([1.0], requires_grad=True)
    optimizer = cr.optim.SGD([w], lr=0.5)
    scaler = cr.amp.GradScaler(enabled=False)
    loss = (w * 3).sum()
    assert scaler.scale(loss) is loss
    loss.backward()
    scaler.unscale_(optimizer)
    scaler.step(optimizer)
    scaler.update()
    assert w.item() == -0.5
    assert scaler.get_scale() == 1.0 and scaler.state_dict() == {} and not scaler.is_enabled()
    with pytest.warns(UserWarning, match="CUDA is not available"):
        assert not cr.amp.GradScaler("cuda").is_enabled()


def test_state_dict_round_trips_through_a_checkpoint():
    scaler = cr.amp.GradScaler(init_scale=256.0, growth_interval=2)
    w = cr.tensor([1.0], requires_grad=True)
    optimizer = cr.optim.SGD([w], lr=0.1)
    scaler.scale(w.sum()).backward()
    scaler.step(optimizer)
    scaler.update()  # one finite step: tracker 1
    buffer = io.BytesIO()
    cr.save({"scaler": scaler.state_dict()}, buffer)
    buffer.seek(0)
    restored = cr.amp.GradScaler()
    restored.load_state_dict(cr.load(buffer)["scaler"])
    assert restored.state_dict() == scaler.state_dict() == {
        "scale": 256.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2,
        "_growth_tracker": 1}
    with pytest.raises(RuntimeError, match="state dict is empty"):
        restored.load_state_dict({})
    # the same keys and values as PyTorch's, so a state dict moves between the two
    theirs = torch.amp.GradScaler("cpu")
    theirs.load_state_dict(scaler.state_dict())
    assert theirs.state_dict() == scaler.state_dict()
