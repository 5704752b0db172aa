"""liquid_nav.expert"""
