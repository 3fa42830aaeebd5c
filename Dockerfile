# Corkboard server image: multi-stage (the build tools stay behind), small (python:3.11-slim),
# runs as an unprivileged user, with a healthcheck against /health.
#   docker build -t corkboard .
#   docker run -p 8000:8000 corkboard          # embedded SQLite in /data, in-process broker
# See docker-compose.yml for PostgreSQL + Redis + two instances.

# ---- build: install Corkboard and its dependencies into a virtualenv
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, from the lock (hashes checked), so code changes do not reinstall them.
COPY requirements.txt requirements-build.txt ./
RUN pip install --require-hashes -r requirements.txt -r requirements-build.txt
COPY . .
RUN rm -rf build ./*.egg-info \
    && pip install --no-deps --no-build-isolation . \
    && python -m compileall -q /opt/venv/lib

# ---- runtime: the virtualenv and nothing else
FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 corkboard \
    && useradd --system --uid 10001 --gid corkboard --home-dir /data --create-home --shell /usr/sbin/nologin corkboard
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=8000
WORKDIR /data
VOLUME ["/data"]
USER corkboard
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=2)"
CMD ["corkboard", "serve", "--host", "0.0.0.0"]
