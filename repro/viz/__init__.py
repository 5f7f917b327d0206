"""repro.viz"""
