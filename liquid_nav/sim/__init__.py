"""liquid_nav.sim"""
