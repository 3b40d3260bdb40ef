"""The desktop app: tray icon, history window, settings dialog, and the sampler thread.

The only package that imports Qt (PySide6, pyqtgraph); it drives the Qt-free core.
"""
