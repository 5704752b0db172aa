"""liquid_nav.data"""
