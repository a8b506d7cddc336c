"""egmt.text"""
