"""Entry script for the frozen application (PyInstaller needs a script, not a package's __main__)."""

from ccdgui.cli import main

raise SystemExit(main())
