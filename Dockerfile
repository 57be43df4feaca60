# The bordermon worker image (also runs every other bordermon command).
# Built by docker-compose.yml; CI rebuilds this context and runs its install and worker
# unprivileged (tests/integration/test_image.py), as no Docker engine runs there.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shell ./shell
COPY bordermon ./bordermon
COPY streams ./streams
COPY producers ./producers
COPY dashboards ./dashboards
COPY monitoring ./monitoring
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --no-create-home bordermon \
    && mkdir -p /var/lib/bordermon && chown 10001 /var/lib/bordermon
# The worker writes only BORDERMON_DATA_DIR (its state lives in Kafka); /app stays root's.
ENV BORDERMON_WEB_HOST=0.0.0.0 BORDERMON_DATA_DIR=/var/lib/bordermon
USER 10001
EXPOSE 6066
ENTRYPOINT ["bordermon"]
CMD ["worker"]
