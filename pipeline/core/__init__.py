"""pipeline.core"""
