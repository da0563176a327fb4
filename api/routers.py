"""A DRF router whose every route answers with and without a trailing slash (CONTRACT §4: no redirect)."""

from rest_framework.routers import SimpleRouter


class OptionalSlashRouter(SimpleRouter):
    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"
