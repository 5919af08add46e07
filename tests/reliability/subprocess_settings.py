"""Settings for the subprocesses of the process-kill tests: the test suite's settings, the
database the parent test names (``APE_FAULT_DATABASE``, JSON), and the database keyring."""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import TEST_KEY_V1

DATABASES = {"default": json.loads(os.environ["APE_FAULT_DATABASE"])}
ALPHAPULSE_ENCRYPTION = {
    "MASTER_KEYS": {1: TEST_KEY_V1},
    "KEY_PROVIDER": "alphapulse_encryption.keys.DatabaseKeyProvider",
}
