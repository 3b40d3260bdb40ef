"""trayapp: a system-tray resource monitor with alert rules and Slack.

The core (everything outside ``trayapp.gui``) never imports Qt.
"""

__version__ = "0.1.0"
