"""repro.protocols: the table runner that the table stages and `python -m repro.probe` share."""
