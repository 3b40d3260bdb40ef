"""The settings dialog, generated from the core's declaration (``settings.FIELDS`` and ``RULE_FIELDS``).

Imports Qt and the core. Every field is checked by the core's own ``check``; a problem shows
beside the field and OK stays disabled. Cancel discards; OK saves atomically and emits the new
settings, which take effect at once.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from trayapp.rules import Rule, format_duration
from trayapp.settings import FIELDS, RULE_FIELDS, Config, Field, SettingError, check, check_rule, save

SECTION_TITLES = {"sampling": "Sampling", "storage": "Storage", "alerts": "Alerts", "app": "App", "slack": "Slack", "prometheus": "Prometheus"}
TABS = (("General", ("sampling", "storage", "alerts", "app")), ("Rules", ()), ("Slack", ("slack",)), ("Fleet", ("prometheus",)))
ERROR_STYLE = "color: #d93025"


class _Bridge(QObject):
    answered = Signal(bool, str)


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class FieldEditor:
    """One setting: its widget, its error label, and the value the core's ``check`` accepts."""

    def __init__(self, field: Field, value: object, on_change) -> None:
        self.field = field
        if field.kind == "bool":
            self.widget: QWidget = QCheckBox()
            self.widget.setChecked(bool(value))
            self.widget.toggled.connect(on_change)
        elif field.kind == "choice":
            self.widget = QComboBox()
            self.widget.addItems(list(field.choices))
            self.widget.setCurrentText(str(value))
            self.widget.currentTextChanged.connect(on_change)
        else:
            self.widget = QLineEdit(_text(value))
            if field.kind == "secret":
                self.widget.setEchoMode(QLineEdit.EchoMode.Password)
            self.widget.textChanged.connect(on_change)
        self.widget.setObjectName(field.key)
        self.widget.setToolTip(field.help)
        self.error = QLabel("")
        self.error.setObjectName(f"{field.key}.error")
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.hide()

    def raw(self) -> object:
        f = self.field
        w = self.widget
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QComboBox):
            return w.currentText()
        text = w.text().strip()  # type: ignore[union-attr]
        if f.kind in ("float", "int"):
            try:
                number = float(text)
            except ValueError:
                return text
            return int(number) if f.kind == "int" and number.is_integer() else number
        return text

    def value(self) -> object:
        """The checked value; raises SettingError."""
        return check(self.field, self.raw())

    def validate(self) -> bool:
        try:
            self.value()
        except SettingError as exc:
            self.error.setText(str(exc).split(": ", 1)[-1])
            self.error.show()
            return False
        self.error.hide()
        return True


class SettingsDialog(QDialog):
    """Edit every setting. ``applied`` carries the saved Config when OK is pressed."""

    applied = Signal(object)

    def __init__(self, config: Config, config_path: Path, data_dir: Path, slack_status: str = "", parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("trayapp — settings")
        self.setMinimumWidth(560)
        self.config = config
        self.config_path = Path(config_path)
        self.data_dir = Path(data_dir)
        self.editors: dict[str, FieldEditor] = {}
        self._bridge = _Bridge()
        self._bridge.answered.connect(self._show_test_answer)

        layout = QVBoxLayout(self)
        self.tabs = QTabWidget()
        layout.addWidget(self.tabs)
        for title, sections in TABS:
            page = QWidget()
            form = QFormLayout(page)
            if title == "Rules":
                self._build_rules(form)
            for section in sections:
                for f in (f for f in FIELDS if f.section == section):
                    self._add_field(form, f)
                    if f.key == "storage.data_dir":
                        self._add_open_folder(form)
                    if f.key == "slack.api_url":
                        self._add_slack_test(form, slack_status)
            self.tabs.addTab(page, title)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.save_error = QLabel("")
        self.save_error.setStyleSheet(ERROR_STYLE)
        self.save_error.hide()
        layout.addWidget(self.save_error)
        self.validate()

    @property
    def ok_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    # --- building

    def _add_field(self, form: QFormLayout, f: Field) -> None:
        editor = FieldEditor(f, getattr(self.config, f.attr), self.validate)
        self.editors[f.key] = editor
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(editor.widget)
        column.addWidget(editor.error)
        label = QLabel(f.label)
        label.setToolTip(f.help)
        form.addRow(label, box)

    def _add_open_folder(self, form: QFormLayout) -> None:
        button = QPushButton("Open folder")
        button.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.data_dir))))
        form.addRow("", button)

    def _add_slack_test(self, form: QFormLayout, slack_status: str) -> None:
        row = QHBoxLayout()
        self.test_button = QPushButton("Send test message")
        self.test_button.clicked.connect(self.send_test)
        row.addWidget(self.test_button)
        self.test_answer = QLabel(slack_status)
        self.test_answer.setObjectName("slack.answer")
        self.test_answer.setWordWrap(True)
        if slack_status:
            self.test_answer.setStyleSheet(ERROR_STYLE)
        row.addWidget(self.test_answer, 1)
        holder = QWidget()
        holder.setLayout(row)
        form.addRow("", holder)

    def _build_rules(self, form: QFormLayout) -> None:
        self.rules_table = QTableWidget(0, len(RULE_FIELDS))
        self.rules_table.setObjectName("rules")
        self.rules_table.setHorizontalHeaderLabels([f.label for f in RULE_FIELDS])
        self.rules_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.rules_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        for col, f in enumerate(RULE_FIELDS):
            self.rules_table.horizontalHeaderItem(col).setToolTip(f.help)
        for rule in self.config.rules:
            self.add_rule(rule)
        self.rules_table.itemChanged.connect(lambda _item: self.validate())
        buttons = QHBoxLayout()
        add = QPushButton("Add rule")
        add.clicked.connect(lambda: (self.add_rule(Rule("cpu_percent")), self.validate()))
        remove = QPushButton("Remove rule")
        remove.clicked.connect(self.remove_selected_rule)
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        self.rules_error = QLabel("")
        self.rules_error.setObjectName("rules.error")
        self.rules_error.setStyleSheet(ERROR_STYLE)
        self.rules_error.setWordWrap(True)
        self.rules_error.hide()
        form.addRow(self.rules_table)
        holder = QWidget()
        holder.setLayout(buttons)
        form.addRow(holder)
        form.addRow(self.rules_error)
        hint = QLabel("Orange when orange ≤ average ≤ red; red above red; unknown with less data than the minimum.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #5f6368")
        form.addRow(hint)

    def add_rule(self, rule: Rule) -> None:
        table = self.rules_table
        blocked = table.blockSignals(True)
        row = table.rowCount()
        table.insertRow(row)
        values = (rule.metric, format_duration(rule.window_seconds), f"{rule.orange:g}", f"{rule.red:g}",
                  format_duration(rule.min_coverage_seconds) if rule.min_coverage_seconds else "0")
        for col, value in enumerate(values):
            table.setItem(row, col, QTableWidgetItem(value))
        table.blockSignals(blocked)

    def remove_selected_rule(self) -> None:
        rows = sorted({i.row() for i in self.rules_table.selectedIndexes()}, reverse=True)
        if not rows and self.rules_table.rowCount():
            rows = [self.rules_table.rowCount() - 1]
        for row in rows:
            self.rules_table.removeRow(row)
        self.validate()

    def set_rule_cell(self, row: int, name: str, text: str) -> None:
        col = [f.name for f in RULE_FIELDS].index(name)
        self.rules_table.item(row, col).setText(text)

    # --- checking

    def _rule_raw(self, row: int) -> dict[str, object]:
        raw: dict[str, object] = {}
        for col, f in enumerate(RULE_FIELDS):
            item = self.rules_table.item(row, col)
            text = item.text().strip() if item else ""
            if f.kind == "float":
                try:
                    raw[f.name] = float(text)
                except ValueError:
                    raw[f.name] = text
            else:
                raw[f.name] = text
        return raw

    def rules(self) -> tuple[Rule, ...]:
        return tuple(check_rule(self._rule_raw(row), row) for row in range(self.rules_table.rowCount()))

    def validate(self, *_args: object) -> bool:
        ok = all([editor.validate() for editor in self.editors.values()])
        problems = []
        for row in range(self.rules_table.rowCount()):
            try:
                check_rule(self._rule_raw(row), row)
            except SettingError as exc:
                problems.append(str(exc).replace("[[rules]] #", "Rule "))
        self.rules_error.setText("\n".join(problems))
        self.rules_error.setVisible(bool(problems))
        ok = ok and not problems
        self.ok_button.setEnabled(ok)
        return ok

    def new_config(self) -> Config:
        """The settings as edited; raises SettingError if any is invalid."""
        values = {editor.field.attr: editor.value() for editor in self.editors.values()}
        return Config(**values, rules=self.rules())

    # --- Slack test

    def send_test(self) -> None:
        from trayapp.slack import send_test

        try:
            config = self.new_config()
        except SettingError as exc:
            self._show_test_answer(False, str(exc))
            return
        if not config.slack_configured:
            self._show_test_answer(False, "Set a webhook URL, or a bot token and a channel, first.")
            return
        self.test_button.setEnabled(False)
        self.test_answer.setStyleSheet("")
        self.test_answer.setText("sending…")
        threading.Thread(target=lambda: self._bridge.answered.emit(*send_test(config)), daemon=True).start()

    def _show_test_answer(self, ok: bool, text: str) -> None:
        self.test_button.setEnabled(True)
        self.test_answer.setStyleSheet("color: #1e8e3e" if ok else ERROR_STYLE)
        self.test_answer.setText(text)

    # --- closing

    def accept(self) -> None:
        if not self.validate():
            return
        config = self.new_config()
        try:
            save(config, self.config_path)
        except OSError as exc:
            self.save_error.setText(f"could not save {self.config_path}: {exc.strerror or exc}")
            self.save_error.show()
            return
        self.config = config
        self.applied.emit(config)
        super().accept()
