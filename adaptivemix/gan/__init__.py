"""GAN training: method plugins, adversarial losses and the trainer.

Importing this package registers the core methods ("vanilla", "adaptivemix").
"""

from adaptivemix.gan import adaptivemix as _adaptivemix  # noqa: F401  (registers "adaptivemix")
from adaptivemix.gan.methods import METHODS, Discrimination, GanMethod, StepContext

__all__ = ["METHODS", "Discrimination", "GanMethod", "StepContext"]
