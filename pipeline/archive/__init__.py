"""pipeline.archive.store"""
