"""Competing methods, one file each, registering themselves on import.

Add a baseline by writing ``baselines/<name>.py`` that registers a
:class:`adaptivemix.gan.GanMethod` subclass with ``@METHODS.register("<name>")``, then put
``<name>`` in ``gan.methods`` of a config. Every module in this folder is imported here,
so nothing else needs editing.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
