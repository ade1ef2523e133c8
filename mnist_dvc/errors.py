"""The project's error types: each names the file or key at fault, what was expected and what was received."""


class PipelineError(Exception):
    """Bad input to a stage (a file, a row, an image). The message says where, what was expected and what came."""


class ParamsError(PipelineError):
    """A `params.yaml` value that is missing, unknown, of the wrong type or out of range."""
