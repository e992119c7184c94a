"""nn.Module, Parameter and the containers: registration, traversal, state dicts, modes,
conversions, hooks and reprs, checked against PyTorch's behaviour."""

from __future__ import annotations

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

torch = pytest.importorskip("torch")
tnn = torch.nn


def _pair(build_ours, build_theirs):
    """The same architecture in both libraries, with PyTorch's weights copied into ours."""
    ours, theirs = build_ours(nn).double(), build_theirs(tnn).double()
    ours.load_state_dict({k: cr.tensor(v.detach().numpy().copy())
                          for k, v in theirs.state_dict().items()})
    return ours, theirs


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.norm = nn.BatchNorm1d(4)
        self.scale = nn.Parameter(cr.ones(1))
        self.register_buffer("steps", cr.zeros(1))
        self.register_buffer("cache", cr.zeros(2), persistent=False)

    def forward(self, x):
        return self.norm(self.fc(x)) * self.scale


class TorchBlock(tnn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = tnn.Linear(3, 4)
        self.norm = tnn.BatchNorm1d(4)
        self.scale = tnn.Parameter(torch.ones(1))
        self.register_buffer("steps", torch.zeros(1))
        self.register_buffer("cache", torch.zeros(2), persistent=False)

    def forward(self, x):
        return self.norm(self.fc(x)) * self.scale


def _nested(lib):
    return lib.Sequential(OrderedDict(
        encoder=lib.Sequential(lib.Linear(2, 3), lib.ReLU()),
        heads=lib.ModuleDict({"a": lib.Linear(3, 1), "b": lib.Linear(3, 2, bias=False)}),
        extra=lib.ModuleList([lib.Tanh(), lib.Linear(3, 3)]),
    ))


# ---------------------------------------------------------------------- registration


def test_names_and_order_match_pytorch():
    ours, theirs = Block(), TorchBlock()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    a, b = _nested(nn), _nested(tnn)
    assert list(a.state_dict()) == list(b.state_dict())
    assert [n for n, _ in a.named_modules()] == [n for n, _ in b.named_modules()]
    assert len(list(a.modules())) == len(list(b.modules()))


def test_parameter_is_a_tensor_that_requires_grad():
    p = nn.Parameter(cr.zeros(2))
    assert isinstance(p, cr.Tensor) and p.requires_grad and p.is_leaf
    assert repr(p) == "Parameter containing:\ntensor([0., 0.], requires_grad=True)"
    assert not nn.Parameter(cr.zeros(2), requires_grad=False).requires_grad
    assert type(p * 2) is cr.Tensor
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q.requires_grad and q._data is not p._data
    r = pickle.loads(pickle.dumps(p))
    assert isinstance(r, nn.Parameter) and np.array_equal(r.detach().numpy(), p.detach().numpy())


def test_shared_parameters_are_listed_once():
    layer = nn.Linear(2, 2)
    net = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(list(net.parameters())) == 2
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(net.named_parameters(remove_duplicate=False))) == 4


def test_attribute_rules():
    m = nn.Module()
    m.w = nn.Parameter(cr.ones(1))
    m.sub = nn.Linear(1, 1)
    m.register_buffer("b", cr.zeros(1))
    assert "w" in m._parameters and "sub" in m._modules and "b" in m._buffers
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'w'"):
        m.w = cr.ones(1)
    m.w = None
    assert m.w is None and list(m.named_parameters()) == [("sub.weight", m.sub.weight),
                                                          ("sub.bias", m.sub.bias)]
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("sub", cr.zeros(1))
    with pytest.raises(KeyError, match="contain"):
        m.register_parameter("a.b", None)
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'missing'"):
        m.missing  # noqa: B018
    del m.sub
    assert "sub" not in m._modules
    with pytest.raises(AttributeError, match="before Module.__init__"):
        class Broken(nn.Module):
            def __init__(self):
                self.w = nn.Parameter(cr.ones(1))
        Broken()


def test_get_submodule_and_parameter():
    net = _nested(nn)
    assert net.get_submodule("heads.b") is net.heads["b"]
    assert net.get_parameter("encoder.0.bias") is net.encoder[0].bias
    with pytest.raises(AttributeError):
        net.get_submodule("encoder.7")


# ---------------------------------------------------------------------- state dict


def test_state_dict_round_trip_and_sharing():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    sd = a.state_dict()
    assert not sd["weight"].requires_grad
    # the state dict shares storage with the module, as in PyTorch
    with cr.no_grad():
        a.weight.mul_(2)
    assert np.array_equal(sd["weight"].numpy(), a.weight.detach().numpy())
    assert repr(b.load_state_dict(sd)) == "<All keys matched successfully>"
    assert np.array_equal(b.weight.detach().numpy(), a.weight.detach().numpy())
    assert b.weight._data is not a.weight._data
    kept = a.state_dict(keep_vars=True)
    assert kept["weight"] is a.weight


def test_strict_loading_errors_like_pytorch():
    ours, theirs = Block(), TorchBlock()
    sd_ours = dict(ours.state_dict())
    sd_theirs = dict(theirs.state_dict())
    for sd in (sd_ours, sd_theirs):
        del sd["fc.bias"]
        sd["ghost"] = sd["steps"]
    with pytest.raises(RuntimeError) as ours_error:
        ours.load_state_dict(sd_ours)
    with pytest.raises(RuntimeError) as theirs_error:
        theirs.load_state_dict(sd_theirs)
    assert str(ours_error.value) == str(theirs_error.value).replace("TorchBlock", "Block")
    result = ours.load_state_dict(sd_ours, strict=False)
    assert result.missing_keys == ["fc.bias"] and result.unexpected_keys == ["ghost"]
    missing, unexpected = result
    assert missing == ["fc.bias"]


def test_unexpected_keys_across_submodules_in_pytorchs_order():
    ours, theirs = _nested(nn), _nested(tnn)
    extra = ["heads.c.weight", "encoder.1.weight", "zzz", "extra.0.bias", "heads.a.weight.x"]
    sd_ours = {k: cr.tensor(v.numpy()) for k, v in theirs.state_dict().items()}
    sd_theirs = dict(theirs.state_dict())
    for key in extra:
        sd_ours[key], sd_theirs[key] = cr.zeros(1), torch.zeros(1)
    del sd_ours["heads.b.weight"], sd_theirs["heads.b.weight"]
    with pytest.raises(RuntimeError) as ours_error:
        ours.load_state_dict(sd_ours)
    with pytest.raises(RuntimeError) as theirs_error:
        theirs.load_state_dict(sd_theirs)
    assert str(ours_error.value) == str(theirs_error.value)
    assert ours.load_state_dict(sd_ours, strict=False) == theirs.load_state_dict(
        sd_theirs, strict=False)


def test_size_mismatch_message():
    ours, theirs = nn.Linear(3, 2), tnn.Linear(3, 2)
    with pytest.raises(RuntimeError) as ours_error:
        ours.load_state_dict({"weight": cr.zeros(2, 4), "bias": cr.zeros(2)})
    with pytest.raises(RuntimeError) as theirs_error:
        theirs.load_state_dict({"weight": torch.zeros(2, 4), "bias": torch.zeros(2)})
    assert str(ours_error.value) == str(theirs_error.value).replace("torch.", "chainrule.")


def test_load_state_dict_assign_takes_the_given_tensors():
    m = nn.Linear(2, 1)
    weight = cr.ones(1, 2, dtype=cr.float64)
    m.load_state_dict({"weight": weight, "bias": cr.zeros(1)}, assign=True)
    assert isinstance(m.weight, nn.Parameter) and m.weight.requires_grad
    assert m.weight.dtype == cr.float64 and m.weight._data is weight._data


def test_load_state_dict_accepts_arrays_and_keeps_dtype():
    m = nn.Linear(2, 1)
    m.load_state_dict({"weight": np.ones((1, 2)), "bias": np.zeros(1)})
    assert m.weight.dtype == cr.float32
    assert np.array_equal(m.weight.detach().numpy(), np.ones((1, 2), np.float32))


# ---------------------------------------------------------------------- modes and grads


def test_train_eval_propagate():
    net = _nested(nn)
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(ValueError):
        net.train("yes")


def test_zero_grad_and_requires_grad():
    net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    net(cr.ones(4, 2)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net[0].requires_grad_(False)
    net(cr.ones(4, 2)).sum().backward()
    assert net[0].weight.grad is None and net[1].weight.grad is not None


def test_to_double_float_keep_parameter_objects():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    weight = net[0].weight
    net(cr.ones(3, 2)).sum().backward()
    assert net.double() is net
    assert net[0].weight is weight and weight.dtype == cr.float64
    assert weight.grad.dtype == cr.float64
    assert net[1].running_mean.dtype == cr.float64
    assert net[1].num_batches_tracked.dtype == cr.int64  # integer buffers keep their dtype
    net.to(cr.float32)
    assert weight.dtype == cr.float32
    assert net.to("cpu") is net
    with pytest.raises(TypeError, match="floating point"):
        net.to(cr.int64)
    with pytest.raises(RuntimeError, match="cuda"):
        net.to("cuda")


def test_apply_visits_children_first():
    seen = []
    _nested(nn).apply(lambda m: seen.append(type(m).__name__))
    expected = []
    _nested(tnn).apply(lambda m: expected.append(type(m).__name__))
    assert seen == expected


# ---------------------------------------------------------------------- hooks


def test_forward_hooks():
    layer = nn.Linear(2, 2)
    calls = []
    pre = layer.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = layer.register_forward_hook(lambda m, args, out: calls.append(out.shape) or out + 1)
    out = layer(cr.ones(3, 2))
    expected = layer.bias.detach().numpy() + 1
    np.testing.assert_allclose(out.detach().numpy(), np.broadcast_to(expected, (3, 2)))
    assert calls == [(3, 2)]
    pre.remove()
    post.remove()
    np.testing.assert_allclose(layer(cr.zeros(1, 2)).detach().numpy()[0],
                               layer.bias.detach().numpy())
    assert calls == [(3, 2)]
    kw = layer.register_forward_hook(lambda m, args, kwargs, out: out * 0, with_kwargs=True)
    assert not layer(cr.ones(1, 2)).detach().numpy().any()
    kw.remove()


def test_full_backward_hook_matches_pytorch():
    ours, theirs = _pair(lambda lib: lib.Linear(3, 2), lambda lib: lib.Linear(3, 2))
    x = np.random.default_rng(0).standard_normal((4, 3))
    records = {}

    def recorder(key):
        def hook(module, grad_input, grad_output):
            records[key] = ([None if g is None else g.detach().numpy().copy() for g in grad_input],
                            [g.detach().numpy().copy() for g in grad_output])
            return (grad_input[0] * 2,)
        return hook

    ours.register_full_backward_hook(recorder("ours"))
    theirs.register_full_backward_hook(recorder("theirs"))
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (ours(xc) ** 2).sum().backward()
    (theirs(xt) ** 2).sum().backward()
    for a, b in zip(records["ours"][0] + records["ours"][1],
                    records["theirs"][0] + records["theirs"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-12)  # doubled by both
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-12)


def test_full_backward_hook_without_input_grad():
    layer = nn.Linear(2, 1)
    seen = []
    layer.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go[0].shape)))
    layer(cr.ones(3, 2)).sum().backward()
    assert seen == [((None,), (3, 1))]


def test_backward_pre_hook_replaces_grad_output():
    layer = nn.Linear(2, 1)
    layer.register_full_backward_pre_hook(lambda m, go: (go[0] * 0,))
    layer(cr.ones(3, 2)).sum().backward()
    assert not layer.weight.grad.numpy().any()


# ---------------------------------------------------------------------- containers


def test_sequential_indexing_and_editing():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    net = nn.Sequential(*layers)
    assert len(net) == 3 and net[0] is layers[0] and net[-1] is layers[2]
    sliced = net[1:]
    assert isinstance(sliced, nn.Sequential) and list(sliced) == layers[1:]
    assert list(sliced._modules) == ["1", "2"]  # slices keep the names, as PyTorch
    net.append(nn.Sigmoid())
    assert len(net) == 4 and isinstance(net[3], nn.Sigmoid)
    del net[1]
    assert list(net._modules) == ["0", "1", "2"] and net[1] is layers[2]
    with pytest.raises(IndexError):
        net[10]  # noqa: B018
    named = nn.Sequential(OrderedDict(first=nn.Linear(2, 2), act=nn.Tanh()))
    assert list(named.state_dict()) == ["first.weight", "first.bias"]
    assert named.first is named[0]
    out = nn.Sequential(nn.Linear(2, 3), nn.ReLU())(cr.ones(5, 2))
    assert out.shape == (5, 3)


def test_module_list_and_dict():
    blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    blocks.append(nn.ReLU())
    blocks.extend([nn.Tanh()])
    blocks.insert(0, nn.Identity())
    assert [type(b).__name__ for b in blocks] == ["Identity", "Linear", "Linear", "Linear",
                                                  "ReLU", "Tanh"]
    assert len(list(blocks.parameters())) == 6
    assert isinstance(blocks[1:3], nn.ModuleList) and len(blocks[1:3]) == 2
    heads = nn.ModuleDict({"b": nn.Linear(1, 1), "a": nn.Linear(1, 2)})
    assert list(heads) == ["b", "a"] and "a" in heads and len(heads) == 2
    heads["c"] = nn.ReLU()
    assert list(heads.keys()) == ["b", "a", "c"]
    assert heads.pop("b") is not None and list(heads) == ["a", "c"]


def test_parameter_list_and_dict():
    plist = nn.ParameterList([cr.ones(2), nn.Parameter(cr.zeros(3))])
    assert all(isinstance(p, nn.Parameter) for p in plist) and len(plist) == 2
    assert [n for n, _ in plist.named_parameters()] == ["0", "1"]
    pdict = nn.ParameterDict({"x": cr.ones(1)})
    assert isinstance(pdict["x"], nn.Parameter) and list(pdict.state_dict()) == ["x"]


# ---------------------------------------------------------------------- repr


def _same_repr(ours, theirs):
    assert repr(ours) == repr(theirs).replace("torch.", "chainrule.")


def test_repr_matches_pytorch():
    _same_repr(nn.Linear(3, 2), tnn.Linear(3, 2))
    _same_repr(nn.Linear(3, 2, bias=False), tnn.Linear(3, 2, bias=False))
    _same_repr(nn.Bilinear(2, 3, 4), tnn.Bilinear(2, 3, 4))
    _same_repr(_nested(nn), _nested(tnn))
    assert repr(Block()) == repr(TorchBlock()).replace("TorchBlock", "Block")
    _same_repr(nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU()]),
               tnn.ModuleList([tnn.Linear(2, 2) for _ in range(3)] + [tnn.ReLU()]))
    _same_repr(nn.ModuleList(), tnn.ModuleList())
    _same_repr(nn.ParameterList([nn.Parameter(cr.ones(2, 3))]),
               tnn.ParameterList([tnn.Parameter(torch.ones(2, 3))]))
    _same_repr(nn.ParameterList([cr.ones(2), cr.ones(1, dtype=cr.float64)]),
               tnn.ParameterList([torch.ones(2), torch.ones(1, dtype=torch.float64)]))
    _same_repr(nn.ParameterDict({"a": cr.ones(2, 3), "b": cr.zeros(1)}),
               tnn.ParameterDict({"a": torch.ones(2, 3), "b": torch.zeros(1)}))
    _same_repr(nn.Sequential(), tnn.Sequential())


def test_extra_repr_of_a_custom_module():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Identity()

        def extra_repr(self):
            return "factor=2"

    assert repr(Scale()) == "Scale(\n  factor=2\n  (inner): Identity()\n)"
