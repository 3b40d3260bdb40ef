"""The settings dialog, generated from the core's declaration (``settings.FIELDS`` and ``RULE_FIELDS``).

Imports Qt and the core. Every field is checked by the core's own ``check``; a problem shows
beside the field and OK stays disabled. Cancel discards; OK saves atomically and emits the new
settings, which take effect at once.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, QObject, QTimer, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QScrollArea,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from trayapp.model import BASE_COLUMNS, metric_label, metric_range, metric_unit
from trayapp.rules import Rule, format_duration, parse_duration
from trayapp.settings import (
    FIELD_BY_KEY,
    FIELDS,
    PANEL_KINDS,
    RULE_FIELDS,
    Config,
    Field,
    SettingError,
    check,
    check_rule,
    known_metric,
    panel_text,
    parse_panel,
    save,
)

SECTION_TITLES = {"sampling": "Sampling", "storage": "Storage", "alerts": "Alerts", "app": "App", "slack": "Slack", "prometheus": "Prometheus",
                  "processes": "Processes"}
TABS = (("General", ("sampling", "storage", "processes", "alerts", "app", "window")), ("Rules", ()), ("Panel", ()), ("Slack", ("slack",)),
        ("Fleet", ("prometheus",)), ("Machines", ("fleet",)))
PANEL_WORDS = {"number": "number", "bars": "graph (bars)", "line": "graph (line)"}  # a panel item's kind, as offered
ERROR_STYLE = "color: #d93025"
CELL_ERROR = "#fce8e6"  # a cell in error or warning is tinted through its palette: a style sheet there
CELL_WARNING = "#fef7e0"  # takes a spin box's arrows away
DURATION_HINT = "e.g. 36h, 90 m, 1h30m, 7d"
DIRECTION_WORDS = {"above": "rises above", "below": "falls below"}  # a rule's direction, as the editor offers it


def friendly_metric(column: str) -> str:
    """``memory_percent`` → ``Memory (%)``: the tooltip's name, capitalised, with the unit."""
    label, unit = metric_label(column), metric_unit(column)
    return f"{label[:1].upper()}{label[1:]}" + (f" ({unit})" if unit else "")


def metric_problem(column: str, available: tuple[str, ...]) -> tuple[bool, str] | None:
    """(is_error, reason) for a rule's metric, or None when this machine measures it.

    A name no probe can produce is an error (the rule would never get data); a GPU column this
    machine has not shown (a config from a GPU box, on a laptop) is only a warning."""
    if column in available:
        return None
    if known_metric(column):
        return False, f"{friendly_metric(column)} is not measured on this machine (yet): this rule stays unknown here"
    return True, f"no probe measures {column!r}; pick a metric from the list"


class RuleRow:
    """The editors of one rule: a metric drop-down, duration fields and spin boxes with the unit."""

    NAMES = tuple(f.name for f in RULE_FIELDS)

    def __init__(self, rule: Rule, available: tuple[str, ...], on_change) -> None:
        fields = {f.name: f for f in RULE_FIELDS}
        self.available = available
        self.metric = QComboBox()
        for column in available:
            self.metric.addItem(friendly_metric(column), column)
        self.window = QLineEdit(format_duration(rule.window_seconds))
        self.min_coverage = QLineEdit(format_duration(rule.min_coverage_seconds) if rule.min_coverage_seconds else "0")
        for edit in (self.window, self.min_coverage):
            edit.setPlaceholderText(DURATION_HINT)
            edit.textChanged.connect(on_change)
        self.direction = QComboBox()
        for data, words in DIRECTION_WORDS.items():
            self.direction.addItem(words, data)
        self.direction.setCurrentIndex(max(0, self.direction.findData(rule.direction)))
        self.orange, self.red = QDoubleSpinBox(), QDoubleSpinBox()
        # Enough decimals to show the file's value as it is (85.55 stays 85.55, not 85.5 or 85.6).
        self._decimals = max(_decimals(rule.orange), _decimals(rule.red))
        for name, spin in (("orange", self.orange), ("red", self.red)):
            f = fields[name]
            spin.setDecimals(max(1, self._decimals))
            spin.setRange(f.minimum if f.minimum is not None else -1e9, f.maximum if f.maximum is not None else 1e9)
            spin.setValue(getattr(rule, name))
            spin.valueChanged.connect(on_change)
        self.set_metric(rule.metric)
        # What each box showed at first, and the exact value behind it: a box the user did not
        # change gives back the file's value, never the box's rounding of it.
        self._original = {"orange": (self.orange.value(), rule.orange), "red": (self.red.value(), rule.red)}
        self.metric.currentIndexChanged.connect(self._metric_changed)
        self.metric.currentIndexChanged.connect(on_change)
        self.direction.currentIndexChanged.connect(self._direction_changed)
        self.direction.currentIndexChanged.connect(on_change)
        for name in self.NAMES:
            self.widget(name).setObjectName(f"rule.{name}")
            self.widget(name).setToolTip(fields[name].help)
        self.errors: dict[str, str] = {}

    def widget(self, name: str) -> QWidget:
        return getattr(self, name)

    def set_metric(self, column: str) -> None:
        index = self.metric.findData(column)
        if index < 0:  # from the config file, not measured here: keep it, flagged
            problem = metric_problem(column, self.available)
            label = f"{column} (no such metric)" if problem and problem[0] else f"{friendly_metric(column)}, not seen here"
            self.metric.addItem(label, column)
            index = self.metric.count() - 1
        self.metric.setCurrentIndex(index)
        self._metric_changed()

    def _metric_changed(self, *_args: object) -> None:
        column = self.metric.currentData() or ""
        unit = f" {metric_unit(column)}".rstrip()
        low, high = metric_range(column)  # bytes/s and RPM reach far past 100
        for spin in (self.orange, self.red):
            spin.setSuffix(unit)
            spin.setDecimals(max(2 if high <= 1 else 1, getattr(self, "_decimals", 0)))
            spin.setRange(low, high)

    def _direction_changed(self, *_args: object) -> None:
        """Turning a rule round turns its thresholds round: red is the higher one for "rises
        above", the lower one for "falls below"; a pair in the other order is swapped."""
        orange, red = self._spin_value("orange"), self._spin_value("red")
        if orange != red and (orange > red) != (self.direction.currentData() == "below"):
            original = getattr(self, "_original", {})
            self._original = {"orange": original.get("red", (None, None)), "red": original.get("orange", (None, None))}
            self.orange.setValue(red)
            self.red.setValue(orange)

    def raw(self) -> dict[str, object]:
        return {
            "metric": self.metric.currentData() or "",
            "window": self.window.text().strip(),
            "direction": self.direction.currentData() or "above",
            "orange": self._spin_value("orange"),
            "red": self._spin_value("red"),
            "min_coverage": self.min_coverage.text().strip(),
        }

    def _spin_value(self, name: str) -> float:
        value = self.widget(name).value()
        shown, exact = getattr(self, "_original", {}).get(name, (None, None))
        return exact if shown is not None and value == shown else value

    def check(self, index: int) -> list[str]:
        """Mark each cell that is wrong with its reason; the reasons, for the list below."""
        raw = self.raw()
        errors: dict[str, str] = {}
        warnings: dict[str, str] = {}
        for f in RULE_FIELDS:
            try:
                check(f, raw[f.name])
            except SettingError as exc:
                errors[f.name] = str(exc).split(": ", 1)[-1]
        if not errors:
            try:
                check_rule(raw, index)
            except SettingError as exc:
                reason = str(exc).split(": ", 1)[-1]
                if "orange must be" in reason:
                    errors["orange"] = errors["red"] = reason
                elif "longer than the window" in reason:
                    errors["min_coverage"] = reason
                else:
                    errors["metric"] = reason
            else:
                window = parse_duration(str(raw["window"]))
                if window < 60:
                    warnings["window"] = f"{format_duration(window)} is a very short window for an average"
        problem = metric_problem(str(raw["metric"]), self.available)
        if problem is not None and "metric" not in errors:
            (errors if problem[0] else warnings)["metric"] = problem[1]
        fields = {f.name: f for f in RULE_FIELDS}
        for name in self.NAMES:
            widget = self.widget(name)
            if name in errors:
                _tint(widget, CELL_ERROR)
                widget.setToolTip(errors[name])
            elif name in warnings:
                _tint(widget, CELL_WARNING)
                widget.setToolTip(warnings[name])
            else:
                _tint(widget, None)
                widget.setToolTip(fields[name].help)
        self.errors = errors
        self.warnings = warnings
        shown = [f"Rule {index + 1} {fields[n].label.lower()}: {why}" for n, why in errors.items()]
        if "orange" in errors and errors.get("orange") == errors.get("red"):
            shown.remove(f"Rule {index + 1} {fields['red'].label.lower()}: {errors['red']}")
        return shown

    def rule(self, index: int) -> Rule:
        """The rule as edited; raises SettingError when a cell is wrong."""
        rule = check_rule(self.raw(), index)
        problem = metric_problem(rule.metric, self.available)
        if problem is not None and problem[0]:
            raise SettingError(f"[[rules]] #{index + 1} metric = {rule.metric!r}: {problem[1]}")
        return rule


def _tint(widget: QWidget, colour: str | None) -> None:
    """A cell's background tinted (None: as the style has it), its frame and arrows kept."""
    palette = QApplication.palette(widget)
    if colour is not None:
        for role in (QPalette.ColorRole.Base, QPalette.ColorRole.Button):
            palette.setColor(role, QColor(colour))
        palette.setColor(QPalette.ColorRole.Text, QColor("#202124"))  # dark text on the light tint, in a dark palette too
        palette.setColor(QPalette.ColorRole.ButtonText, QColor("#202124"))
    widget.setPalette(palette)
    widget.setProperty("tint", colour or "")


def _decimals(value: float, most: int = 6) -> int:
    """How many decimals ``value`` is written with (85.55 → 2), at most ``most``."""
    text = repr(float(value))
    if "e" in text or "." not in text:
        return 0 if "e" not in text else most
    return min(most, len(text.split(".", 1)[1].rstrip("0")))


class CheckedEditor:
    """An editor of one declared setting (``field``): its text as the person left it (``raw``),
    checked by the core's ``check``, the reason beside it (``error``) when it is wrong."""

    field: Field
    error: QLabel

    def raw(self) -> object:
        raise NotImplementedError

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


class PanelEditor(CheckedEditor):
    """The ``[panel] items`` setting: which metrics sit in the panel, in which order, each a number
    or a graph. A table of the items, a drop-down of the metrics to add, Add, Remove, Up, Down."""

    def __init__(self, text: str, available: tuple[str, ...], on_change) -> None:
        self.field = FIELD_BY_KEY["panel.items"]
        self.available = available
        self.on_change = on_change
        try:
            self.items = list(parse_panel(text))
        except ValueError:
            self.items = []
        self.widget = QWidget()
        column = QVBoxLayout(self.widget)
        column.setContentsMargins(0, 0, 0, 0)
        self.table = QTableWidget(0, 2)
        self.table.setObjectName("panel.items")
        self.table.setHorizontalHeaderLabels(["Metric", "Shown as"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setMinimumHeight(140)
        column.addWidget(self.table)
        row = QHBoxLayout()
        self.metric = QComboBox()
        self.metric.setObjectName("panel.metric")
        for name in available:
            self.metric.addItem(friendly_metric(name), name)
        row.addWidget(self.metric, 1)
        self.buttons: dict[str, QPushButton] = {}
        for word, action in (("Add", self.add), ("Remove", self.remove), ("Up", lambda: self.move(-1)), ("Down", lambda: self.move(1))):
            button = QPushButton(word)
            button.setObjectName(f"panel.{word.lower()}")
            button.clicked.connect(action)
            row.addWidget(button)
            self.buttons[word] = button
        column.addLayout(row)
        self.error = QLabel("")
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.hide()
        column.addWidget(self.error)
        self._fill()

    def _fill(self, selected: int | None = None) -> None:
        self.table.setRowCount(len(self.items))
        for i, (metric, kind) in enumerate(self.items):
            label = friendly_metric(metric) if metric in self.available else f"{friendly_metric(metric)}, not seen here"
            self.table.setItem(i, 0, QTableWidgetItem(label))
            box = QComboBox()
            for data in PANEL_KINDS:
                box.addItem(PANEL_WORDS[data], data)
            box.setCurrentIndex(box.findData(kind))
            box.currentIndexChanged.connect(lambda _i, m=metric, b=box: self.set_kind(m, b.currentData()))
            self.table.setCellWidget(i, 1, box)
        if selected is not None and 0 <= selected < len(self.items):
            self.table.selectRow(selected)
        self.on_change()

    def selected(self) -> int | None:
        rows = {index.row() for index in self.table.selectedIndexes()}
        return min(rows) if rows else None

    def add(self, metric: str | None = None, kind: str = "number") -> None:
        metric = metric or self.metric.currentData()
        if not metric:
            return
        if any(m == metric for m, _ in self.items):  # once only: select the one there
            self._fill(next(i for i, (m, _) in enumerate(self.items) if m == metric))
            return
        self.items.append((metric, kind))
        self._fill(len(self.items) - 1)

    def remove(self) -> None:
        row = self.selected()
        if row is None and self.items:
            row = len(self.items) - 1
        if row is not None:
            del self.items[row]
            self._fill(min(row, len(self.items) - 1) if self.items else None)

    def move(self, step: int) -> None:
        row = self.selected()
        if row is None or not 0 <= row + step < len(self.items):
            return
        self.items[row], self.items[row + step] = self.items[row + step], self.items[row]
        self._fill(row + step)

    def set_kind(self, metric: str, kind: str) -> None:
        self.items = [(m, kind if m == metric else k) for m, k in self.items]
        self.on_change()

    def raw(self) -> str:
        return panel_text(self.items)



class _Bridge(QObject):
    answered = Signal(bool, str)


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class FieldEditor(CheckedEditor):
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



class SettingsDialog(QDialog):
    """Edit every setting. ``applied`` carries the saved Config when OK is pressed."""

    applied = Signal(object)

    def __init__(self, config: Config, config_path: Path, data_dir: Path, slack_status: str = "", parent=None,
                 metrics: "tuple[str, ...] | list[str] | None" = None) -> None:
        """``metrics``: the columns this machine measures (the last sample's); the base ones if None."""
        super().__init__(parent)
        self.setWindowTitle("trayapp — settings")
        screen = QGuiApplication.primaryScreen()
        room = screen.availableGeometry().width() - 20 if screen is not None else 640
        self.setMinimumWidth(max(320, min(640, room)))  # never wider than a small screen at 2x
        self.config = config
        self.metrics = tuple(dict.fromkeys(metrics if metrics is not None else BASE_COLUMNS))
        self.rule_rows: list[RuleRow] = []
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
            scroll = QScrollArea()  # a page taller than a small screen scrolls; OK stays in reach
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            scroll.setWidget(page)
            if title == "Rules":
                self._build_rules(form)
            if title == "Panel":
                self._build_panel(form)
            for section in sections:
                for f in (f for f in FIELDS if f.section == section):
                    self._add_field(form, f)
                    if f.key == "storage.data_dir":
                        self._show_folder_in_use(self.editors[f.key])
                        self._add_open_folder(form)
                    if f.key == "slack.api_url":
                        self._add_slack_test(form, slack_status)
                    if f.key == "fleet.verify_tls":
                        self.tls_warning = QLabel("The server's certificate is not checked: anyone on the way can read the "
                                                  "password or token and forge the machines' levels.")
                        self.tls_warning.setObjectName("fleet.verify_tls.warning")
                        self.tls_warning.setWordWrap(True)
                        self.tls_warning.setStyleSheet(ERROR_STYLE)
                        form.addRow("", self.tls_warning)
            self.tabs.addTab(scroll, title)
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
        if f.zero:  # what 0 means, beside the field, not only in its tooltip
            line = QHBoxLayout()
            line.addWidget(editor.widget, 1)
            note = QLabel(f.zero)
            note.setObjectName(f"{f.key}.zero")
            note.setStyleSheet("color: #5f6368")
            line.addWidget(note)
            column.addLayout(line)
        else:
            column.addWidget(editor.widget)
        column.addWidget(editor.error)
        label = QLabel(f.label)
        label.setToolTip(f.help)
        form.addRow(label, box)

    def _show_folder_in_use(self, editor: "FieldEditor") -> None:
        """The folder recorded into now, where the field does not say it: the default (empty
        field) or one given by ``--data-dir`` / ``TRAYAPP_DATA_DIR``, which outrank the file."""
        field = editor.widget
        if isinstance(field, QLineEdit):
            field.setPlaceholderText(f"{self.data_dir} (in use)")
            if field.text() and Path(field.text()).expanduser() != self.data_dir:
                note = QLabel(f"In use now: {self.data_dir} (--data-dir or TRAYAPP_DATA_DIR outrank this file)")
                note.setObjectName("storage.data_dir.in_use")
                note.setWordWrap(True)
                note.setStyleSheet("color: #5f6368")
                field.parentWidget().layout().addWidget(note)

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
        self.rules_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.rules_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.rules_table.setMinimumHeight(160)
        for rule in self.config.rules:
            self.add_rule(rule)
        QApplication.instance().focusChanged.connect(self._select_focused_rule)
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
        hint = QLabel("Rises above: orange when orange ≤ average ≤ red, red above red. Falls below: orange when "
                      "red ≤ average ≤ orange, red below red. Unknown with less data than the minimum.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #5f6368")
        form.addRow(hint)

    def _build_panel(self, form: QFormLayout) -> None:
        self.panel = PanelEditor(self.config.panel_items, self.metrics, self.validate)
        self.editors[self.panel.field.key] = self.panel  # checked and saved with the other settings
        form.addRow(self.panel.widget)
        hint = QLabel("Each metric becomes its own item in the panel, beside the level icon, in this order: a number "
                      "(the unit is on hover) or a graph of the last 2 minutes. It turns orange or red only when a rule "
                      "on that metric is. A click opens its history.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #5f6368")
        form.addRow(hint)

    def add_rule(self, rule: Rule) -> None:
        table = self.rules_table
        row = table.rowCount()
        table.insertRow(row)
        editors = RuleRow(rule, self.metrics, self.validate)
        self.rule_rows.append(editors)
        for col, name in enumerate(RuleRow.NAMES):
            table.setCellWidget(row, col, editors.widget(name))

    def _select_focused_rule(self, _old: QWidget | None, new: QWidget | None) -> None:
        for row, editors in enumerate(self.rule_rows):
            if new is not None and any(new is editors.widget(n) or editors.widget(n).isAncestorOf(new) for n in RuleRow.NAMES):
                # select the row (what Remove acts on) without making its first cell current:
                # ``selectRow`` did, and on a real display that moved the focus to the Metric box,
                # so what a person typed into the field they had clicked changed the metric
                self.rules_table.selectionModel().select(
                    self.rules_table.model().index(row, 0),
                    QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
                )
                return

    def remove_selected_rule(self) -> None:
        rows = sorted({i.row() for i in self.rules_table.selectedIndexes()}, reverse=True)
        if not rows and self.rules_table.rowCount():
            rows = [self.rules_table.rowCount() - 1]
        for row in rows:
            self.rules_table.removeRow(row)
            del self.rule_rows[row]
        self.validate()

    def set_rule_cell(self, row: int, name: str, text: str) -> None:
        """Set one rule's cell as a person would: pick a metric, type a duration or a number
        (a spin box keeps a number within its bounds, as it does for typing)."""
        editors = self.rule_rows[row]
        if name == "metric":
            editors.set_metric(text)
        elif name in ("orange", "red"):
            editors.widget(name).setValue(float(text))
        elif name == "direction":  # "rises above" / "falls below", or the file's "above" / "below"
            box = editors.direction
            box.setCurrentIndex(max(box.findData(text), box.findText(text)))
        else:
            editors.widget(name).setText(text)

    def rule_cell_error(self, row: int, name: str) -> str:
        """Why a cell is marked wrong ('' when it is fine)."""
        return self.rule_rows[row].errors.get(name, "")

    def rule_cell_warning(self, row: int, name: str) -> str:
        return self.rule_rows[row].warnings.get(name, "")

    # --- checking

    def rules(self) -> tuple[Rule, ...]:
        return tuple(editors.rule(row) for row, editors in enumerate(self.rule_rows))

    def validate(self, *_args: object) -> bool:
        if not hasattr(self, "buttons"):
            return False  # still being built
        ok = all([editor.validate() for editor in self.editors.values()])
        problems = []
        for row, editors in enumerate(self.rule_rows):
            problems += editors.check(row)
        self.rules_error.setText("\n".join(problems))
        self.rules_error.setVisible(bool(problems))
        ok = ok and not problems
        if hasattr(self, "tls_warning"):  # TLS verification off for an https URL: said beside the box
            url = self.editors["fleet.url"].raw()
            self.tls_warning.setVisible(not self.editors["fleet.verify_tls"].raw() and str(url).lower().startswith("https://"))
        self.ok_button.setEnabled(ok)
        QTimer.singleShot(0, self._grow_to_fit)  # once the error lines are laid out
        return ok

    def _grow_to_fit(self) -> None:
        """Taller by what an error line added to the page shown, where the screen has the room:
        an error appears beside its field, not below a scroll bar that was not there."""
        scroll = self.tabs.currentWidget()
        if not isinstance(scroll, QScrollArea) or scroll.widget() is None:
            return
        missing = scroll.widget().sizeHint().height() - scroll.viewport().height()
        screen = self.screen() or QGuiApplication.primaryScreen()
        if missing > 0 and screen is not None:
            room = screen.availableGeometry().height() - self.frameGeometry().height()
            grow = min(missing, max(room, 0))
            if grow > 0:
                self.resize(self.width(), self.height() + grow)

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
