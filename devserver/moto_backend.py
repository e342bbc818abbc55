"""`python -m devserver.moto_backend`: the local AWS backend (moto) as a process of its own.

`make serve` starts it as a child so moto and the app do not share one core (and one GIL);
the app reaches it through AWS_ENDPOINT_URL exactly as it reaches AWS in production. It
prints `endpoint http://HOST:PORT` on stdout once it serves, then nothing more there.

With `--data-dir` the state outlives the process (devserver/durable.py): every mutating
request is journaled as received (method, path, query, headers, body), in the order moto
applied it, before its response leaves; a restart loads the snapshot and replays the journal
through the same WSGI app. Mutations are applied one at a time (one lock, the same one that
makes each DynamoDB request atomic), so that order is the order of their effects.

The snapshot is a pickle of moto's DynamoDB and S3 backends: exact (object dates, tags,
checksums) and fast. It is only read back by the same moto release (moto_fidelity's pin), and
like any pickle it is trusted input: the directory is this machine's own development data.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

__all__ = ["Recorder", "capture", "decode_request", "encode_request", "main", "restore"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# DynamoDB actions that change nothing; any other X-Amz-Target, and any S3 request but
# GET/HEAD/OPTIONS, is journaled (journaling a read would only cost space).
_READ_ACTIONS = frozenset(
    {
        "BatchGetItem",
        "DescribeContinuousBackups",
        "DescribeEndpoints",
        "DescribeLimits",
        "DescribeTable",
        "DescribeTimeToLive",
        "GetItem",
        "ListTables",
        "ListTagsOfResource",
        "Query",
        "Scan",
        "TransactGetItems",
    }
)
_SERVICES = ("dynamodb", "s3")
_log = logging.getLogger("devserver.backend")


def is_mutation(environ: dict[str, Any]) -> bool:
    """Whether a request may change the backend's state."""
    if environ["REQUEST_METHOD"] in ("GET", "HEAD", "OPTIONS"):
        return False
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return not target or target.rpartition(".")[2] not in _READ_ACTIONS


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        return bytes(stream.read(int(length)))
    if environ.get("wsgi.input_terminated"):  # chunked: werkzeug has de-chunked it
        return bytes(stream.read())
    return b""


def encode_request(environ: dict[str, Any], body: bytes) -> bytes:
    """The request as the WSGI app receives it: its CGI/HTTP variables, then the body."""
    from moto.core.request import PRESERVED_HEADER_NAMES_ENVIRON_KEY

    variables = {k: v for k, v in environ.items() if isinstance(v, str)}
    names = environ.get(PRESERVED_HEADER_NAMES_ENVIRON_KEY)
    head = {"environ": variables, "names": names if isinstance(names, dict) else None}
    return json.dumps(head, separators=(",", ":")).encode() + b"\n" + body


def decode_request(payload: bytes) -> dict[str, Any]:
    """A WSGI environ that replays an encoded request."""
    from moto.core.request import PRESERVED_HEADER_NAMES_ENVIRON_KEY

    head, _, body = payload.partition(b"\n")
    decoded = json.loads(head)
    environ: dict[str, Any] = dict(decoded["environ"])
    if decoded["names"] is not None:
        environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = decoded["names"]
    environ.update(
        {
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
    )
    return environ


def _drain(result: Iterable[bytes]) -> list[bytes]:
    try:
        return list(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def capture(out: IO[bytes]) -> None:
    """Pickle moto's DynamoDB and S3 state (hold the mutation lock: nothing may change)."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import s3_backends

    state = {
        "dynamodb": list(dynamodb_backends.iter_backends()),
        "s3": list(s3_backends.iter_backends()),
        "s3_bucket_accounts": dict(s3_backends.bucket_accounts),
    }
    pickle.dump(state, out, protocol=pickle.HIGHEST_PROTOCOL)


def restore(blob: bytes) -> None:
    """Put a captured state back into this (fresh) process's moto."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import s3_backends

    state = pickle.loads(blob)  # noqa: S301 - our own data directory (see module docstring)
    for backends, entries in ((dynamodb_backends, state["dynamodb"]), (s3_backends, state["s3"])):
        for account, region, backend in entries:
            dict.__setitem__(backends[account], region, backend)
    s3_backends.bucket_accounts.update(state["s3_bucket_accounts"])


class Recorder:
    """WSGI middleware: apply mutations one at a time and journal each before answering."""

    def __init__(
        self,
        app: WSGIApp,
        store: Any,
        lock: Any,
        meta: dict[str, Any],
        write_state: Callable[[IO[bytes]], None] = capture,
    ) -> None:
        self.app, self.store, self.lock, self.meta = app, store, lock, meta
        self.write_state = write_state

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not is_mutation(environ):
            return self.app(environ, start_response)
        body = _read_body(environ)  # before the lock: a slow upload holds up no one
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ.pop("wsgi.input_terminated", None)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input"] = io.BytesIO(body)
        payload = encode_request(environ, body)
        with self.lock:
            try:
                return _drain(self.app(environ, start_response))
            finally:
                # Journaled whatever the outcome: a replay then meets the same state and
                # gives the same answer (a failed condition fails again, and writes nothing).
                self.store.append(payload)
                if self.store.needs_compaction():
                    self.store.compact(self.write_state, **self.meta)


def replay(app: WSGIApp, records: list[bytes]) -> int:
    """Apply journaled requests in order; returns how many raised inside the app."""
    failures = 0

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        del status, headers, exc_info

    for payload in records:
        try:
            _drain(app(decode_request(payload), start_response))
        except Exception:  # noqa: BLE001 - it raised the first time too; the order goes on
            failures += 1
    return failures


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devserver.moto_backend")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-dir", type=Path, help="keep the state here")
    where.add_argument("--in-memory", action="store_true", help="keep nothing")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--exit-with-stdin", action="store_true", help="stop when stdin closes (parent gone)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    announce = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stdout carries the one endpoint line; anything else goes to stderr

    from devserver import moto_fidelity

    try:
        moto_fidelity.apply()
    except moto_fidelity.MotoVersionError as exc:
        print(f"backend: {exc}", file=sys.stderr)
        return 2
    import moto
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from devserver.durable import DataDir, DataDirBusy
    from devserver.moto_lock import LOCK

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per call is noise
    # A stop asked for during the replay comes after it: the journal is never cut short.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())  # Ctrl-C reaches the whole group
    app: WSGIApp = DomainDispatcherApplication(create_backend_app)
    store: DataDir | None = None
    meta = {"moto": moto.__version__}
    if args.data_dir is not None:
        store = DataDir(args.data_dir.resolve())
        try:
            recovered = store.recover()
        except DataDirBusy as exc:
            print(f"backend: {exc}", file=sys.stderr)
            return 2
        started = time.perf_counter()
        if recovered.snapshot is not None:
            if recovered.snapshot_meta.get("moto") != moto.__version__:
                print(
                    f"backend: {store.path} holds moto {recovered.snapshot_meta.get('moto')} "
                    f"state; this is moto {moto.__version__}. Start from empty: "
                    f"rm -rf {store.path}",
                    file=sys.stderr,
                )
                return 2
            restore(recovered.snapshot)
        failures = replay(app, recovered.records)
        with LOCK:
            store.compact(capture, **meta)
        print(
            f"backend: state in {store.path} (snapshot + {len(recovered.records)} journaled "
            f"requests, {failures} failed, in {time.perf_counter() - started:.2f} s"
            f"{'; a torn last write was dropped' if recovered.torn else ''})",
            file=sys.stderr,
            flush=True,
        )
        app = Recorder(app, store, LOCK, meta)

    class Handler(MotoRequestHandler):
        # werkzeug sends headers and body apart: without this each response waits for the
        # client's delayed ACK (40 ms), as boto3 keeps its connections alive.
        disable_nagle_algorithm = True

    server = make_server(args.host, args.port, app, True, request_handler=Handler)
    if args.exit_with_stdin:

        def watch_stdin() -> None:
            # EOF: the parent closed it, or died. (The raw fd: a daemon thread blocked in
            # sys.stdin's buffer would abort the interpreter's shutdown.)
            while os.read(0, 4096):
                pass
            stop.set()

        threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    serving = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    serving.start()
    announce.write(f"endpoint http://{args.host}:{server.server_port}\n")
    announce.close()
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    if store is not None:
        with LOCK:  # no mutation in flight; later ones fail (their clients got no answer)
            store.compact(capture, **meta)
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
