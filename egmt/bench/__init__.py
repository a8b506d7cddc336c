"""egmt.bench"""
