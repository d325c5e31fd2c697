"""Foundations every layer may use: errors, the method registry and parameter checks, provenance,
atomic and staged output, progress bars, resource measurement and side-effect-free seeding.

Import the submodules directly (``from erasekit.core.errors import DataError``); this package
imports nothing heavy so that ``erasekit --help`` stays fast.
"""
