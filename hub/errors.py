"""The hub's root error: a request that cannot be done, with a message a person can act on."""


class FlowError(Exception):
    """A flow refused a request; `message` is safe to show to the user."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
