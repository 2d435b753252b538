"""For every test here, set before Haystack is imported: a test run sends no telemetry.

The engine's own fixtures are in tests/engine/conftest.py and apply only to the tests under tests/engine/.
"""

import os

os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"
