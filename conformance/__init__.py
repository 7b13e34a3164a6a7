"""The xlinalg conformance suite: point it at a backend, get an operator × check verdict.

``python -m xlinalg_conformance --backend NAME`` (see ``docs/conformance.md``), the pytest plugin
:mod:`xlinalg_conformance.plugin`, the backends in :mod:`xlinalg_conformance.backends`, the samples, references
and checks in :mod:`xlinalg_conformance.samples`, :mod:`xlinalg_conformance.reference`, :mod:`xlinalg_conformance.checks`.
"""
