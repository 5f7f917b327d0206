"""repro.eval"""
