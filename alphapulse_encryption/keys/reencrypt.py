"""The former path of :mod:`alphapulse_encryption.migration.reencrypt`, still named by
users' code: this name is that very module, so using or patching either is the same."""

import sys

from ..migration import reencrypt as _moved

sys.modules[__name__] = _moved
