"""liquid_nav.runtime"""
