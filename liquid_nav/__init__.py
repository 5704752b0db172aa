"""liquid_nav: fly a drone to a visual target with liquid neural network (CfC / NCP) controllers."""

__version__ = "0.1.0"
