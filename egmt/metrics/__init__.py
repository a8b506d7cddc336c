"""egmt.metrics"""
