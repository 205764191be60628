"""The one error type a user sees for bad input (and its form for an unreadable config file)."""


class ConfigError(ValueError):
    """Bad user input: names the key, the bad value and the valid choices."""

    def __init__(self, key: str, value: object, expected: str):
        self.key, self.value, self.expected = key, value, expected
        super().__init__(f"config key '{key}': got {value!r}; expected {expected}")


class ConfigFileError(ConfigError):
    """A config file that cannot be read as a mapping of config keys: names the file and,
    for a YAML syntax error, the line and column (1-based, as editors count)."""

    def __init__(self, path: object, problem: str, expected: str, line: int | None = None,
                 column: int | None = None):  # fmt: skip
        self.path, self.line, self.column = str(path), line, column
        self.key, self.value, self.expected = str(path), problem, expected
        where = f"config file '{path}'"
        if line is not None:
            where += f", line {line}" + (f", column {column}" if column is not None else "")
        ValueError.__init__(self, f"{where}: {problem}; expected {expected}")
