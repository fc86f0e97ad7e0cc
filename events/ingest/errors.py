"""The one way an import fails as a whole: ``ImportRejected`` (nothing is written)."""

from __future__ import annotations


class ImportRejected(Exception):
    """The whole file is refused; ``code`` names the problem class, ``where`` locates it."""

    def __init__(self, code: str, message: str, where: str = "") -> None:
        super().__init__(f"{message} ({where})" if where else message)
        self.code = code
        self.message = message
        self.where = where

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "where": self.where}
