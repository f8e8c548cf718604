# job-ledger: one image for every part (ledger serve, projections, monitors, workers).
#   docker build -t job-ledger .
#   docker run --rm job-ledger ledger --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LEDGER_DATA_DIR=/app/ledger-data

WORKDIR /app

# Dependencies first (a layer that survives code changes), then the code.
COPY pyproject.toml README.md ./
COPY ledger ./ledger
COPY projections ./projections
COPY adapters ./adapters
RUN pip install . \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/ledger ledger \
    && mkdir -p /app/ledger-data \
    && chown ledger:ledger /app/ledger-data

# Handler modules are found from the working directory (ledger worker --handler mod:fn).
COPY examples ./examples

USER ledger

EXPOSE 8000
CMD ["ledger", "serve", "--host", "0.0.0.0", "--port", "8000"]
