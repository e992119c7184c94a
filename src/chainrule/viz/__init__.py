"""Seeing backprop: the computation graph as DOT or an interactive HTML page, the worked
backward pass of a small graph, and plots of gradient flow and activations.

>>> chainrule.viz.to_html(loss, "graph.html")          # open it in a browser, click a node
>>> chainrule.viz.explain(loss)                        # the backward pass, step by step
>>> chainrule.viz.plot_grad_flow(tracker, "flow.png")  # per-layer gradient norms, log scale
"""

from .dot import render, to_dot
from .explain import explain, explain_expression
from .html import to_html
from .plots import plot_activation_histograms, plot_grad_flow

__all__ = ["explain", "explain_expression", "plot_activation_histograms", "plot_grad_flow",
           "render", "to_dot", "to_html"]
