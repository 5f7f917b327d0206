"""repro.report"""
