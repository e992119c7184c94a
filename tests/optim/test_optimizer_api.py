"""The Optimizer base: groups, zero_grad, state dicts (PyTorch's layout), resuming, errors."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule import nn
from chainrule.optim import LBFGS, SGD, Adagrad, Adam, AdamW, RMSprop

from ._parity import initial_arrays, loss_fn

torch = pytest.importorskip("torch")

MAKERS = {
    "SGD": lambda lib, ps: lib.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "Adam": lambda lib, ps: lib.optim.Adam(ps, lr=0.01, amsgrad=True),
    "AdamW": lambda lib, ps: lib.optim.AdamW(ps, lr=0.01),
    "Adagrad": lambda lib, ps: lib.optim.Adagrad(ps, lr=0.1, lr_decay=0.01),
    "RMSprop": lambda lib, ps: lib.optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    "LBFGS": lambda lib, ps: lib.optim.LBFGS(ps, max_iter=3, history_size=3,
                                             line_search_fn="strong_wolfe"),
}


def _setup(lib):
    arrays, x, y = initial_arrays()
    params = [lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in arrays]
    return params, lib.tensor(x, dtype=lib.float64), lib.tensor(y, dtype=lib.float64)


def _run(opt, params, x, y, steps):
    def closure():
        opt.zero_grad()
        loss = loss_fn(params, x, y)
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)


def _to_torch(value):
    if isinstance(value, chainrule.Tensor):
        return torch.from_numpy(value.numpy().copy())
    if isinstance(value, dict):
        return {k: _to_torch(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_torch(v) for v in value)
    return value


def _from_torch(value):
    if isinstance(value, torch.Tensor):
        return chainrule.from_numpy(value.detach().numpy().copy())
    if isinstance(value, dict):
        return {k: _from_torch(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_from_torch(v) for v in value)
    return value


def _structure(value):
    """A state dict's layout: keys, types and shapes, without the numbers."""
    if isinstance(value, (chainrule.Tensor, torch.Tensor)):
        return ("tensor", tuple(value.shape), str(value.dtype).split(".")[-1])
    if isinstance(value, dict):
        return {k: _structure(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_structure(v) for v in value]
    return type(value).__name__ if isinstance(value, (int, float)) else value


@pytest.mark.parametrize("name", MAKERS)
def test_state_dict_layout_matches_torch(name):
    ours, theirs = _setup(chainrule), _setup(torch)
    opt_ours, opt_theirs = MAKERS[name](chainrule, ours[0]), MAKERS[name](torch, theirs[0])
    _run(opt_ours, *ours, steps=2)
    _run(opt_theirs, *theirs, steps=2)
    sd_ours, sd_theirs = opt_ours.state_dict(), opt_theirs.state_dict()
    if name == "LBFGS":
        # PyTorch keeps L-BFGS's scalars (t, ro, H_diag, al) as 0-d tensors; chainrule as numbers
        assert sd_ours["state"][0].keys() == sd_theirs["state"][0].keys()
        assert sd_ours["param_groups"] == sd_theirs["param_groups"]
    else:
        assert _structure(sd_ours) == _structure(sd_theirs)


@pytest.mark.parametrize("name", MAKERS)
def test_resume_from_saved_state_is_exact(name, tmp_path):
    params, x, y = _setup(chainrule)
    opt = MAKERS[name](chainrule, params)
    _run(opt, params, x, y, 4)
    chainrule.save(opt.state_dict(), tmp_path / "opt.safetensors")
    saved_params = [p.detach().clone() for p in params]
    _run(opt, params, x, y, 4)

    resumed = [p.clone().requires_grad_(True) for p in saved_params]
    opt2 = MAKERS[name](chainrule, resumed)
    opt2.load_state_dict(chainrule.load(tmp_path / "opt.safetensors"))
    _run(opt2, resumed, x, y, 4)
    for a, b in zip(params, resumed):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad"])
def test_continues_from_a_torch_state_dict(name):
    ours, theirs = _setup(chainrule), _setup(torch)
    opt_theirs = MAKERS[name](torch, theirs[0])
    _run(opt_theirs, *theirs, steps=5)
    params = [chainrule.from_numpy(p.detach().numpy().copy()).requires_grad_(True)
              for p in theirs[0]]
    opt_ours = MAKERS[name](chainrule, params)
    opt_ours.load_state_dict(_from_torch(opt_theirs.state_dict()))
    _run(opt_ours, params, *ours[1:], steps=5)
    _run(opt_theirs, *theirs, steps=5)
    for a, b in zip(params, theirs[0]):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10)
    # and back: our state dict loads into PyTorch
    opt_theirs.load_state_dict(_to_torch(opt_ours.state_dict()))


def test_load_state_dict_casts_to_param_dtype_and_copies():
    w = chainrule.zeros(3, dtype=chainrule.float32, requires_grad=True)
    opt = Adam([w])
    f64 = chainrule.float64
    state = {"state": {0: {"step": chainrule.tensor(2.0), "exp_avg": chainrule.ones(3, dtype=f64),
                           "exp_avg_sq": chainrule.ones(3, dtype=f64)}},
             "param_groups": [dict(opt.state_dict()["param_groups"][0], lr=0.5)]}
    opt.load_state_dict(state)
    loaded = opt.state[w]
    assert loaded["exp_avg"].dtype == chainrule.float32
    assert loaded["step"].dtype == chainrule.float32
    assert loaded["exp_avg"] is not state["state"][0]["exp_avg"]
    assert opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[0]["params"][0] is w


@pytest.mark.parametrize("change, message", [
    (lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0])), "2 parameter groups"),
    (lambda sd: sd["param_groups"][0]["params"].pop(), "doesn't match the size"),
    (lambda sd: sd["state"][1].update(exp_avg=chainrule.zeros(5, dtype=chainrule.float64)),
     "state 'exp_avg' of parameter 1 has shape \\(5,\\)"),
    (lambda sd: sd.pop("state"), "expected a dict with 'state' and 'param_groups'"),
])
def test_load_state_dict_errors_leave_optimizer_unchanged(change, message):
    params, x, y = _setup(chainrule)
    opt = Adam(params, lr=0.01)
    _run(opt, params, x, y, 1)
    sd = opt.state_dict()
    sd = {"state": {k: dict(v) for k, v in sd["state"].items()},
          "param_groups": [dict(g, params=list(g["params"])) for g in sd["param_groups"]]}
    change(sd)
    before = (opt.param_groups, {id(k): v for k, v in opt.state.items()})
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(sd)
    assert (opt.param_groups, {id(k): v for k, v in opt.state.items()}) == before


def test_zero_grad_to_none_or_zeros():
    w = chainrule.ones(3, requires_grad=True)
    opt = SGD([w], lr=0.1)
    (w * w).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert w.grad is not None and w.grad.tolist() == [0.0, 0.0, 0.0]
    opt.zero_grad()
    assert w.grad is None


def test_parameters_without_grad_are_skipped():
    a, b = chainrule.ones(2, requires_grad=True), chainrule.ones(2, requires_grad=True)
    opt = Adam([a, b], lr=0.1)
    (a * 2).sum().backward()
    opt.step()
    assert b.tolist() == [1.0, 1.0] and b not in opt.state
    assert a.tolist() != [1.0, 1.0]


def test_step_bumps_the_version_so_stale_graphs_raise():
    w = chainrule.ones(2, requires_grad=True)
    opt = SGD([w], lr=0.1)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation|version"):
        loss.backward()


def test_add_param_group_and_named_params():
    a, b = chainrule.ones(1, requires_grad=True), chainrule.ones(1, requires_grad=True)
    opt = SGD([("a", a)], lr=0.1)
    opt.add_param_group({"params": [("b", b)], "lr": 0.5})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.state_dict()["param_groups"][1]["param_names"] == ["b"]
    assert opt.state_dict()["param_groups"][1]["params"] == [1]


@pytest.mark.parametrize("make, error, message", [
    (lambda w: SGD(w, lr=0.1), TypeError, "wrap it in a list"),
    (lambda w: SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda w: SGD([{"params": {w}}], lr=0.1), TypeError, "ordered collections"),
    (lambda w: SGD([w, 1.0], lr=0.1), TypeError, "params\\[1\\] of the new group is float"),
    (lambda w: SGD([w * 2], lr=0.1), ValueError, "non-leaf"),
    (lambda w: SGD([{"params": [w]}, {"params": [w]}], lr=0.1), ValueError, "more than one"),
    (lambda w: SGD([w], lr=-1), ValueError, "Invalid learning rate"),
    (lambda w: SGD([w], lr=0.1, nesterov=True), ValueError, "Nesterov momentum requires"),
    (lambda w: Adam([w], betas=(1.0, 0.9)), ValueError, "beta parameter at index 0"),
    (lambda w: AdamW([w], eps=-1), ValueError, "epsilon"),
    (lambda w: Adagrad([w], initial_accumulator_value=-1), ValueError, "initial_accumulator"),
    (lambda w: RMSprop([w], alpha=-1), ValueError, "alpha"),
    (lambda w: LBFGS([{"params": [w]}, {"params": [w * 1]}]), ValueError, "non-leaf"),
    (lambda w: LBFGS([w], line_search_fn="armijo"), ValueError, "strong_wolfe"),
    (lambda w: Adam([w], differentiable=True), NotImplementedError, "without recording a graph"),
])
def test_construction_errors(make, error, message):
    w = chainrule.ones(2, requires_grad=True)
    with pytest.raises(error, match=message):
        make(w)


def test_lbfgs_needs_a_closure_and_one_group():
    a, b = chainrule.ones(1, requires_grad=True), chainrule.ones(1, requires_grad=True)
    with pytest.raises(ValueError, match="parameter groups"):
        LBFGS([{"params": [a]}, {"params": [b]}])
    with pytest.raises(RuntimeError, match="needs a closure"):
        LBFGS([a]).step()


def test_duplicate_parameter_warns():
    w = chainrule.ones(1, requires_grad=True)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        SGD([w, w], lr=0.1)


def test_repr_lists_groups():
    opt = SGD([chainrule.ones(1, requires_grad=True)], lr=0.1)
    assert repr(opt).startswith("SGD (\nParameter Group 0\n    dampening: 0\n")


def test_trains_an_nn_module():
    chainrule.manual_seed(0)
    hidden, out = nn.Linear(2, 16), nn.Linear(16, 1)
    model = lambda x: out(hidden(x).tanh())  # noqa: E731
    x = chainrule.randn(64, 2)
    y = (x[:, :1] * x[:, 1:]).detach()
    opt = Adam([*hidden.parameters(), *out.parameters()], lr=0.02)
    first = None
    for _ in range(150):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.2 * first
