"""liquid_nav.evaluate"""
