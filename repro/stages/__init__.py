"""repro.stages"""
