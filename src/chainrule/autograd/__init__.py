"""Reverse-mode automatic differentiation: the engine, grad mode and gradient checking."""

from . import forward_ad, functional
from .anomaly_mode import detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from .engine import backward, grad
from .function import Function, FunctionCtx, once_differentiable
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = [
    "backward", "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "gradcheck", "gradgradcheck", "GradcheckError", "Function", "FunctionCtx",
    "once_differentiable",
    "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
]
