"""The bare path carried by faust: the middle case of ``bench stream``, between bare and limit.

The worker's faust app (``make_faust_app``: its broker, fetch and commit settings, the worker's
quiet logging) with one agent that takes micro-batches as the worker's does
(``streams.runtime.app.micro_batches``) and SETs each event's bytes in Redis, one pipeline per
micro-batch, as ``bare_path.py`` does; faust acks and commits. No validation, no user state, no
changelog, no lists: what consume -> SET costs once faust carries the messages. Set beside the
bare path and the no-model limit it splits the limit's gap into the framework's share and the
share of the worker's own work.

    python -m streams.runtime.faust_floor 20000     # settings from SIDSTREAM_*

prints ``ready`` once it holds partitions, then, after ``N`` events are written, the JSON line
of ``bare_path.py`` (:class:`streams.runtime.bare_path.BareResult`), and stops.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import asdict
from typing import Any

import faust
import redis.asyncio as aioredis

from streams.runtime.app import make_faust_app, micro_batches
from streams.runtime.bare_path import KEY_PREFIX, Progress
from streams.runtime.worker import QuietWorker
from streams.settings import EVENTS_TOPIC, Settings


def build_floor(settings: Settings, n: int) -> faust.App:
    app = make_faust_app(settings)
    topic = app.topic(EVENTS_TOPIC, partitions=settings.kafka.topic_partitions,
                      key_serializer="raw", value_serializer="raw")
    progress: list[Progress] = []  # set when ready: times count from there, as bare's do

    @app.timer(interval=0.1)
    async def announce_ready() -> None:
        if not progress and app.consumer.assignment():
            progress.append(Progress(n))
            print("ready", flush=True)

    @app.agent(topic, name="sidstream.floor")
    async def consume_and_set(stream: Any) -> None:
        redis = aioredis.from_url(settings.redis.redis_url)
        async for batch in micro_batches(stream, settings):
            pipe = redis.pipeline(transaction=False)
            for ev in batch:
                msg = ev.message
                pipe.set(KEY_PREFIX + (msg.key or b"").decode(), msg.value or b"",
                         ex=settings.redis.rec_ttl_s)
            await pipe.execute()
            if progress and progress[0].done < n and progress[0].written(len(batch)):
                print(json.dumps(asdict(progress[0].result())), flush=True)
                os.kill(os.getpid(), signal.SIGTERM)  # faust's graceful stop

    return app


def main(argv: list[str]) -> int:
    settings = Settings.from_env()
    app = build_floor(settings, int(argv[0]))
    QuietWorker(app, loglevel="warning", redirect_stdouts=False).execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
