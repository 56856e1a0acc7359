"""executor/resources"""
