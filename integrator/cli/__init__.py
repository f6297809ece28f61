"""The `integrator` command: one module per command group, each thin (parse, call one function, print)."""

from __future__ import annotations

from integrator.cli.app import main

__all__ = ["main"]
