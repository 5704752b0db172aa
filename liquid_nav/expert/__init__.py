"""liquid_nav.expert: the privileged expert pilot that demonstrations are collected from."""
from liquid_nav.expert.privileged import ExpertConfig, PrivilegedExpert

__all__ = ["ExpertConfig", "PrivilegedExpert"]
