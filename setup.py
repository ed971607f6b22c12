"""The compiled part of the combine engine, built when a C compiler is present (``optional``): without
it ccdgui installs and runs the same, with the numpy implementation of the same arithmetic."""

import sys

from setuptools import Extension, setup

if sys.platform == "win32":
    FLAGS = ["/O2", "/fp:precise"]
else:  # same float32 operations as numpy: no fused multiply-add, no reassociation
    FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]

setup(ext_modules=[Extension("ccdgui.model._stack", ["ccdgui/model/_stack.c"],
                             depends=["ccdgui/model/_networks.h"], extra_compile_args=FLAGS, optional=True)])
