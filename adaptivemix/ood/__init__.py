"""Out-of-distribution detection: test sets and detectors.

Importing this package registers the OOD sets.
"""

from adaptivemix.ood import (
    embedded_sets,  # noqa: F401  (registers the offline OOD sets)
    local_sets,  # noqa: F401  (registers the ODIN and OpenOOD readers)
)
