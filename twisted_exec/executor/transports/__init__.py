"""executor/transports"""
