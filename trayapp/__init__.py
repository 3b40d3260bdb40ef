"""trayapp: a system-tray resource monitor with alert rules and Slack.

The core (everything outside ``trayapp.gui``) never imports Qt.
"""

import os as _os

__version__ = "0.1.0"

# Arrow's default allocator (mimalloc) keeps freed memory for reuse; for an app that reads a
# burst at start-up and then idles for months, the system allocator gives it back (bench/).
_os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
