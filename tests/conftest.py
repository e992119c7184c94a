"""Shared test settings: float64 checks, bounded hypothesis runs."""

from hypothesis import settings

settings.register_profile("chainrule", max_examples=30, deadline=None)
settings.load_profile("chainrule")
