"""liquid_nav.models"""
