"""Static files storage: content-hashed names with gzip (and Brotli) twins (WhiteNoise), whose
hashed URLs are used also when DEBUG is on: `make demo` runs with DEBUG=1 and serves its static
files as production does (Django's manifest storage would fall back to unhashed URLs)."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class HashedCompressedStaticFiles(CompressedManifestStaticFilesStorage):
    def url(self, name: str | None, force: bool = True) -> str:
        return super().url(name, force=force)
