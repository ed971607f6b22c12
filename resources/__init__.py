"""Icons and other files the application shows (installed as the package ``ccdgui.resources``)."""
