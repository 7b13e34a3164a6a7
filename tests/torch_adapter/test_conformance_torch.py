"""The conformance suite on the torch backend: every operator × check is one test item
(``test_conformance_torch[potrf-fd_grad]``, ...), including the cross check with NumPy."""

from xlinalg_conformance.plugin import conformance_tests

from tests.torch_adapter._helpers import torch  # noqa: F401  (skips the module without torch)

test_conformance_torch = conformance_tests("torch")
