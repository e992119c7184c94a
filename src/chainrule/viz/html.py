"""The computation graph as one self-contained HTML page: inline SVG drawn by inline
JavaScript from inline JSON, no network and no Graphviz needed. Click a node to see its
op, shape, value and gradient; drag to pan, scroll to zoom.

>>> chainrule.viz.to_html(loss, "graph.html", params=model)
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ..tensor import Tensor
from .dot import summarize
from .graph import Graph, read_graph, user_names

__all__ = ["to_html", "layout"]

BOX_W, BOX_H, GAP_X, GAP_Y = 150, 44, 30, 56


def layout(graph: Graph) -> dict:
    """``vertex index -> (x, y)`` of box centres: layers top to bottom in forward order (each
    op one layer below its deepest input, a leaf just above its first reader), ordered
    within a layer by the mean position of their neighbours to keep edges short."""
    vertices = graph.vertices
    rank: dict = {}
    for v in vertices:
        if v.kind == "op":
            rank[v.index] = 1 + max((rank.get(i, 0) for i in v.inputs), default=0)
    readers: dict = {}
    for v in vertices:
        for i in v.inputs:
            readers.setdefault(i, []).append(v.index)
    for v in vertices:
        if v.kind == "leaf":
            rank[v.index] = min((rank[r] for r in readers.get(v.index, ())), default=1) - 1
    layers: dict = {}
    for v in vertices:
        layers.setdefault(rank[v.index], []).append(v.index)
    order = {i: k for layer in layers.values() for k, i in enumerate(layer)}
    inputs = {v.index: v.inputs for v in vertices}
    for sweep in range(4):  # alternate: place by inputs going down, by readers going up
        down = sweep % 2 == 0
        for r in sorted(layers, reverse=not down):
            centre = {}
            for i in layers[r]:
                near = inputs[i] if down else readers.get(i, [])
                centre[i] = float(np.mean([order[j] for j in near])) if near else order[i]
            layers[r].sort(key=centre.__getitem__)
            for k, i in enumerate(layers[r]):
                order[i] = k
    widest = max(len(layer) for layer in layers.values())
    top = min(layers)
    positions = {}
    for r, layer in layers.items():
        offset = (widest - len(layer)) * (BOX_W + GAP_X) / 2
        for k, i in enumerate(layer):
            positions[i] = (offset + k * (BOX_W + GAP_X) + BOX_W / 2 + GAP_X,
                            (r - top) * (BOX_H + GAP_Y) + BOX_H / 2 + GAP_Y / 2)
    return positions


def _text(array: Any) -> str:
    """A value or gradient as the details panel shows it: every element up to 64, else a
    summary and the first elements."""
    if array is None:
        return "not kept by the graph"
    array = np.asarray(array)
    if array.size <= 64:
        return np.array2string(array, precision=5, separator=", ", max_line_width=60)
    head = np.array2string(array.reshape(-1)[:8], precision=4, separator=", ")
    return f"{summarize(array)}\nfirst elements: {head}"


def _data(graph: Graph) -> dict:
    positions = layout(graph)
    nodes = []
    for v in graph.vertices:
        x, y = positions[v.index]
        shape = "?" if v.shape is None else "(" + ", ".join(map(str, v.shape)) + ")"
        title = (v.name or "leaf") if v.kind == "leaf" else (f"{v.name} = {v.op}" if v.name else v.op)
        nodes.append({
            "id": v.index, "x": x, "y": y, "kind": "output" if v is graph.root else v.kind,
            "title": title, "op": v.op if v.kind == "op" else "leaf (AccumulateGrad)",
            "backward": v.backward_name, "name": v.name or "", "shape": shape,
            "dtype": v.dtype or "?", "params": ", ".join(f"{k}={p}" for k, p in v.params.items()),
            "value": _text(v.value), "grad": _text(v.grad),
        })
    edges = [[i, v.index] for v in graph.vertices for i in v.inputs]
    width = max(x for x, _ in positions.values()) + BOX_W / 2 + 30
    height = max(y for _, y in positions.values()) + BOX_H / 2 + 30
    return {"nodes": nodes, "edges": edges, "width": width, "height": height,
            "box": [BOX_W, BOX_H], "gradsKnown": graph.grads_known}


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body { margin: 0; font: 13px Helvetica, Arial, sans-serif; display: flex; height: 100vh; }
#canvas { flex: 1; overflow: hidden; background: #fbfbfb; cursor: grab; }
#panel { width: 340px; border-left: 1px solid #ccc; padding: 12px; overflow: auto; background: #fff; }
#panel h2 { font-size: 15px; margin: 0 0 8px; }
#panel dt { font-weight: bold; margin-top: 8px; color: #444; }
#panel dd { margin: 2px 0 0 0; white-space: pre; overflow-x: auto; font-family: monospace; font-size: 12px; }
.node rect { stroke: #555; stroke-width: 1; rx: 6; }
.node.leaf rect { fill: #cfe2f3; } .node.op rect { fill: #ffffff; }
.node.output rect { fill: #d9ead3; } .node.selected rect { stroke: #d62728; stroke-width: 3; }
.node { cursor: pointer; } .node text { pointer-events: none; text-anchor: middle; }
.edge { stroke: #888; fill: none; marker-end: url(#arrow); }
.note { color: #a33; }
</style></head><body>
<div id="canvas"><svg id="graph" xmlns="http://www.w3.org/2000/svg" width="100%" height="100%">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7"
orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#888"/></marker></defs>
<g id="scene"></g></svg></div>
<div id="panel"><h2 id="detail-title">Click a node</h2><p id="hint">Each box is a tensor: a leaf
(blue), the result of an op (white) or the output (green). Gradients are of the output's
sum.</p><dl>
<dt>op</dt><dd id="detail-op"></dd><dt>backward</dt><dd id="detail-backward"></dd>
<dt>shape</dt><dd id="detail-shape"></dd><dt>dtype</dt><dd id="detail-dtype"></dd>
<dt>parameters</dt><dd id="detail-params"></dd>
<dt>value</dt><dd id="detail-value"></dd><dt>gradient</dt><dd id="detail-grad"></dd></dl></div>
<script type="application/json" id="graph-data">__DATA__</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("graph-data").textContent);
  var NS = "http://www.w3.org/2000/svg", svg = document.getElementById("graph");
  var scene = document.getElementById("scene"), w = data.box[0], h = data.box[1];
  var byId = {}, view = {x: 0, y: 0, w: data.width, h: data.height};
  function el(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    parent.appendChild(e); return e;
  }
  data.nodes.forEach(function (n) { byId[n.id] = n; });
  data.edges.forEach(function (e) {
    var a = byId[e[0]], b = byId[e[1]], y0 = a.y + h / 2, y1 = b.y - h / 2, m = (y0 + y1) / 2;
    el("path", {"class": "edge", d: "M" + a.x + "," + y0 + " C" + a.x + "," + m + " " + b.x +
      "," + m + " " + b.x + "," + y1}, scene);
  });
  function short(s, n) { return s.length > n ? s.slice(0, n - 1) + "\\u2026" : s; }
  data.nodes.forEach(function (n) {
    var g = el("g", {"class": "node " + n.kind, id: "node-" + n.id}, scene);
    el("rect", {x: n.x - w / 2, y: n.y - h / 2, width: w, height: h}, g);
    el("text", {x: n.x, y: n.y - 3, "font-weight": "bold"}, g).textContent = short(n.title, 22);
    el("text", {x: n.x, y: n.y + 13, "font-size": "11"}, g).textContent = short(n.shape, 24);
    g.addEventListener("click", function (ev) { ev.stopPropagation(); select(n.id); });
  });
  function select(id) {
    var n = byId[id];
    document.querySelectorAll(".node.selected").forEach(function (e) { e.classList.remove("selected"); });
    document.getElementById("node-" + id).classList.add("selected");
    document.getElementById("detail-title").textContent = n.title;
    ["op", "backward", "shape", "dtype", "params", "value", "grad"].forEach(function (k) {
      document.getElementById("detail-" + k).textContent = n[k] || "-";
    });
    if (location.hash !== "#node-" + id) { history.replaceState(null, "", "#node-" + id); }
  }
  function apply() { svg.setAttribute("viewBox", [view.x, view.y, view.w, view.h].join(" ")); }
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var f = ev.deltaY > 0 ? 1.15 : 1 / 1.15, r = svg.getBoundingClientRect();
    var px = view.x + view.w * (ev.clientX - r.left) / r.width;
    var py = view.y + view.h * (ev.clientY - r.top) / r.height;
    view = {x: px - (px - view.x) * f, y: py - (py - view.y) * f, w: view.w * f, h: view.h * f};
    apply();
  }, {passive: false});
  var drag = null;
  svg.addEventListener("mousedown", function (ev) { drag = {x: ev.clientX, y: ev.clientY, v: view}; });
  window.addEventListener("mouseup", function () { drag = null; });
  window.addEventListener("mousemove", function (ev) {
    if (!drag) { return; }
    var r = svg.getBoundingClientRect(), s = Math.max(view.w / r.width, view.h / r.height);
    view = {x: drag.v.x - (ev.clientX - drag.x) * s, y: drag.v.y - (ev.clientY - drag.y) * s,
            w: drag.v.w, h: drag.v.h};
    apply();
  });
  if (!data.gradsKnown) {
    document.getElementById("hint").innerHTML += "<br><span class='note'>The graph was freed by " +
      "backward: gradients are shown for leaves only.</span>";
  }
  apply();
  var m = /^#node-(\\d+)$/.exec(location.hash);
  if (m && byId[m[1]]) { select(Number(m[1])); }
})();
</script></body></html>
"""


def to_html(output: Tensor, path: str | os.PathLike, params: Any = None,
            title: str = "chainrule graph") -> str:
    """Write one self-contained HTML page drawing the graph behind ``output``; clicking a node
    shows its op, shape, dtype, value and gradient (of ``output.sum()``). Tensors are named
    after the caller's variables or from ``params`` (a Module or a dict of name -> tensor).
    Returns the path.

    >>> chainrule.viz.to_html(loss, "graph.html", params=model)   # then open it in a browser
    """
    graph = read_graph(output, user_names(params, 1))
    payload = json.dumps(_data(graph)).replace("</", "<\\/")  # no "</script>" inside the data
    page = _PAGE.replace("__TITLE__", title.replace("<", "&lt;")).replace("__DATA__", payload)
    path = os.fspath(path)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path
