"""Build of the optional compiled kernel layer (everything else is in pyproject.toml).

``xlinalg.lapack._kernels`` is compiled from ``xlinalg/lapack/src`` with the machine's C++17
compiler. It is optional: where no compiler exists (or the build fails) the package installs
without it and runs the pure Array-API rules.
"""

import sys
from pathlib import Path

from setuptools import Extension, setup

SRC = Path("xlinalg/lapack/src")
flags = ["/std:c++17", "/O2"] if sys.platform == "win32" else ["-std=c++17", "-O3", "-g0", "-fvisibility=hidden", "-fopenmp-simd"]

setup(
    ext_modules=[
        Extension(
            "xlinalg.lapack._kernels",
            sources=[str(SRC / "entries.cpp"), str(SRC / "module.cpp")],
            depends=[str(p) for p in sorted(SRC.glob("*.h*"))],
            extra_compile_args=flags,
            extra_link_args=[] if sys.platform == "win32" else ["-pthread"],
            language="c++",
            optional=True,
        )
    ]
)
