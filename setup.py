"""The compiled part of the combine engine, built when a C compiler is present (``optional``): without
it ccdgui installs and runs the same, with the numpy implementation of the same arithmetic.

The kernel's unrolled sorting networks (``_networks.h``) are generated into the build tree from
``ccdgui/model/networks.py`` just before compiling, so they always match the networks of the numpy path.
"""

import importlib.util
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
NETWORKS = "ccdgui/model/networks.py"

if sys.platform == "win32":
    FLAGS = ["/O2", "/fp:precise"]
else:  # same float32 operations as numpy: no fused multiply-add, no reassociation
    FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]


def _networks_module():
    """ccdgui/model/networks.py loaded by path: no numpy and no ccdgui package needed at build time."""
    spec = importlib.util.spec_from_file_location("_ccdgui_networks", HERE / NETWORKS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildExt(build_ext):
    """build_ext that first writes _networks.h into the build tree and puts it on the include path."""

    def build_extensions(self) -> None:
        folder = Path(self.build_temp).resolve() / "generated"
        _networks_module().write_header(folder / "_networks.h")
        for extension in self.extensions:
            extension.include_dirs.insert(0, str(folder))
        super().build_extensions()


setup(ext_modules=[Extension("ccdgui.model._stack", ["ccdgui/model/_stack.c"], depends=[NETWORKS],
                             extra_compile_args=FLAGS, optional=True)],
      cmdclass={"build_ext": BuildExt})
