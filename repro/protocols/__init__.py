"""repro.protocols: the runner every table runs on (the pipeline's stages and
`python -m repro.probe` alike), the unit type that declares a table (repro.tables holds the
units), and the scorers: a linear probe of frozen features (Tables 1, 2) and a
nearest-neighbour classifier fitted on generated samples (Table 3)."""
