"""`python -m serve` (make serve): the API on serve.host:serve.port (127.0.0.1:8001)."""

from __future__ import annotations

import logging
import sys

import uvicorn

from serve.app import create_app
from serve.settings import ServeSettings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = ServeSettings.from_config()
    try:
        settings.check_bind()
    except ValueError as error:
        print(f"serve: {error}", file=sys.stderr)
        return 2
    print(
        f"serving {settings.analytics_path} on http://{settings.host}:{settings.port} "
        f"(token {'required' if settings.token else 'not set'}; docs at /docs)",
        flush=True,
    )
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
