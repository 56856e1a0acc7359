"""executor/core"""
