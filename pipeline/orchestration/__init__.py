"""pipeline.orchestration"""
