"""Forward mode for every op of the table (tests/ops/specs.py), in float64.

For random input tangents v the JVP from forward mode must match central differences
(f(x + eps v) - f(x - eps v)) / 2 eps, and, for random output cotangents u, the
reverse-mode VJP through the identity <u, J v> = <J^T u, v>.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import chainrule
import chainrule.autograd.forward_ad as fwAD

from .specs import SPECS

SMOOTH = [(spec, c) for spec in SPECS for c in spec.cases if spec.differentiable and c.smooth]
IDS = [f"{spec.name}-{c.id}" for spec, c in SMOOTH]
EPS = 1e-6


def _float_outputs(out):
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o for o in outs if o.dtype.is_floating_point]


@pytest.mark.parametrize(("spec", "c"), SMOOTH, ids=IDS)
def test_jvp(spec, c):
    key = f"{spec.name}-{c.id}"
    arrays = c.make_inputs(spec, key)
    rng = np.random.default_rng(zlib.crc32(("jvp" + key).encode()))
    tangents = [rng.standard_normal(a.shape) for a in arrays]

    def run(inputs):
        return _float_outputs(spec.call(chainrule, inputs, c.kwargs))

    with fwAD.dual_level():
        duals = [fwAD.make_dual(chainrule.tensor(a), chainrule.tensor(t))
                 for a, t in zip(arrays, tangents)]
        outs = run(duals)
        forward = [fwAD.unpack_dual(o).tangent for o in outs]
        forward = [np.zeros(o.shape) if t is None else t.cpu().numpy() for o, t in zip(outs, forward)]

    with chainrule.no_grad():
        plus = run([chainrule.tensor(a + EPS * t) for a, t in zip(arrays, tangents)])
        minus = run([chainrule.tensor(a - EPS * t) for a, t in zip(arrays, tangents)])
    for k, (f, p, m) in enumerate(zip(forward, plus, minus)):
        numeric = (p.cpu().numpy() - m.cpu().numpy()) / (2 * EPS)
        np.testing.assert_allclose(f, numeric, rtol=spec.rtol, atol=spec.atol,
                                   err_msg=f"output {k}: JVP vs finite differences")

    inputs = [chainrule.tensor(a, requires_grad=True) for a in arrays]
    outs = run(inputs)
    live = [o for o in outs if o.requires_grad]
    if not live or not all(np.isfinite(o.detach().cpu().numpy()).all() for o in live):
        return  # no gradient flows, or the function is undefined here (mean over no elements)
    cotangents = [rng.standard_normal(o.shape) for o in live]
    grads = chainrule.autograd.grad(live, inputs, [chainrule.tensor(u) for u in cotangents],
                                    allow_unused=True)
    reverse = sum(float((g.cpu().numpy() * t).sum()) for g, t in zip(grads, tangents) if g is not None)
    live_forward = [f for f, o in zip(forward, outs) if o.requires_grad]
    forward_dot = sum(float((u * f).sum()) for u, f in zip(cotangents, live_forward))
    assert forward_dot == pytest.approx(reverse, rel=1e-9, abs=1e-9)
