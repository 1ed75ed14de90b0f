"""The analysts' workbench: a server-rendered web app over the archive (``veille serve``)."""
