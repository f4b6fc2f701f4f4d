"""pipeline.science"""
