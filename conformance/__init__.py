"""The xlinalg conformance suite: point it at a backend, get an operator × check verdict.

``python -m conformance --backend NAME`` (see ``docs/conformance.md``), the pytest plugin
:mod:`conformance.plugin`, the backends in :mod:`conformance.backends`, the samples, references
and checks in :mod:`conformance.samples`, :mod:`conformance.reference`, :mod:`conformance.checks`.
"""
