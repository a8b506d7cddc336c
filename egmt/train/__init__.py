"""egmt.train"""
