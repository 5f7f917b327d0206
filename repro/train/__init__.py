"""repro.train"""
