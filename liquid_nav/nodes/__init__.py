"""liquid_nav.nodes"""
