"""dtypes, devices, storage and shape helpers: the bottom layer, importing nothing else of ember."""
