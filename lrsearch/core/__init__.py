"""The bottom of the house: what every other package may use and nothing here imports
from above. `errors` (the exception classes and their one-line messages), `checks`
(argument checks in Keras' message shape), `defaults`, `fileio` (atomic writes, CSV
tables with a JSON sidecar), `progress` (live bars and their terminal rules), `version`.
"""
