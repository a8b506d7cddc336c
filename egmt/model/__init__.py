"""egmt.model"""
