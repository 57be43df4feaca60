FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bordermon ./bordermon
COPY streams ./streams
COPY producers ./producers
RUN pip install --no-cache-dir . && useradd --system --uid 10001 bordermon
USER bordermon
ENV BORDERMON_WEB_HOST=0.0.0.0
EXPOSE 6066
ENTRYPOINT ["bordermon"]
CMD ["worker"]
