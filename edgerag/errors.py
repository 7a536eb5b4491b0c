"""One error hierarchy. Shells (CLI, TUI) catch EdgeragError and show its message; anything else is a bug."""


class EdgeragError(Exception):
    """A problem the user can fix; the message says what and where, in one line."""

    exit_code = 1


class ConfigError(EdgeragError):
    """A setting has a bad value or the config file cannot be read."""


class ModelError(EdgeragError):
    """A model is missing, corrupt, of the wrong kind, or cannot be imported."""


class ModelNotFound(ModelError):
    """No model of that name in the store, or no active model of a kind."""


class CollectionError(EdgeragError):
    """A collection is missing, empty, or was built with another embedder."""


class BadInputError(EdgeragError):
    """A file or argument given by the user cannot be used."""


class MissingExtraError(EdgeragError):
    """An optional dependency group (e.g. the `train` extra) is not installed."""

    def __init__(self, extra: str, module: str):
        super().__init__(
            f"this needs the '{extra}' extra (missing module '{module}'): pip install 'edgerag[{extra}]'"
        )


def require(module: str, extra: str = "train"):
    """Import an optional heavy module or raise a MissingExtraError naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(extra, exc.name or module) from exc
