"""Process wiring: the ``modelarium`` CLI, the HTTP server shared by bot and daemon, and which
fronts and loops run in which process. The only package that may import every layer."""
