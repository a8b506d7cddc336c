"""egmt.data"""
