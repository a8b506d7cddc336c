"""egmt.infer"""
