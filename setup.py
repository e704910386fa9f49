"""Builds the compiled tagging engine; everything else is in pyproject.toml.

The extension is optional: where it cannot be built (no C compiler), the package installs
without it and `Tagger` runs its Python engine, which gives the same results, slower.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [
            Extension(
                "workpulse.tagging._engine",
                ["streams/workpulse/tagging/_engine.pyx"],
                extra_compile_args=["-O2"],
                optional=True,
            )
        ],
        compiler_directives={"language_level": 3},
    )
)
