"""liquid_nav.train"""
