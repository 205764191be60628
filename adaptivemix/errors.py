"""The one error type a user sees for bad input."""


class ConfigError(ValueError):
    """Bad user input: names the key, the bad value and the valid choices."""

    def __init__(self, key: str, value: object, expected: str):
        self.key, self.value, self.expected = key, value, expected
        super().__init__(f"config key '{key}': got {value!r}; expected {expected}")
