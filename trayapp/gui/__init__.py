"""The desktop app: tray icon, history window, settings dialog, and the sampler thread.

The only package that imports Qt (PySide6, pyqtgraph); it drives the Qt-free core.
"""

from trayapp.gui.plotlib import check_sources_uncached

check_sources_uncached()  # before any other module is imported beside PySide6: ~8 MB not kept (plotlib)
