"""``audioclas serve``: the REST API, the training queue and the web page."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from audioclas.cli import COMMANDS
from audioclas.cli.console import print_error, stderr

EXAMPLES = """
examples:
  audioclas serve                                   http://127.0.0.1:5000/ (the page), /docs (the API)
  audioclas serve --host 0.0.0.0 --token SECRET     reachable from the network; deleting needs the token, training is off
  AUDIOCLAS_TOKEN=SECRET audioclas serve --host 0.0.0.0 --data-root /srv/datasets --cors https://lab.example.org
  audioclas serve --host 0.0.0.0 --token SECRET --data-root /srv/datasets --allowed-hosts audio.lab.example.org
                                                    trains on /srv/datasets; answers to http://audio.lab.example.org:5000/

security: URL inputs may reach public addresses only (not loopback, private or link-local ones) unless
--allow-private-urls; every upload, download, archive, request body and audio duration is bounded (see the
options). Without --token or $AUDIOCLAS_TOKEN, anyone who reaches the server may train and delete models,
upload and delete datasets, and read the training history. Listening beyond loopback, the server trains only
on datasets below --data-root (without one, training is off unless --allow-any-dataset). Uploaded datasets go
to the first --data-root's uploads/ folder (a server without --data-root takes none), at most --max-datasets
of them in --max-datasets-mb together. $AUDIOCLAS_DATA_ROOT gives the --data-root folders when the flag is not
given. Requests must name the server by an IP address, a loopback name, the --host name or an --allowed-hosts
name (this stops DNS-rebinding web pages).
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help=COMMANDS["serve"],
        description="Serve predictions and training over HTTP: the web page at /, OpenAPI docs at /docs, "
        "the DEEPaaS v2 routes under /v2/models/. Training jobs run one at a time (by default) in worker "
        "processes; their history is kept in the data folder ($AUDIOCLAS_HOME) across restarts.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    access = parser.add_argument_group("access")
    access.add_argument(
        "--token", help="bearer token for the train, cancel and delete routes (default: $AUDIOCLAS_TOKEN)"
    )
    access.add_argument(
        "--cors",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let web pages from ORIGIN call the API (repeatable; '*' for any)",
    )
    access.add_argument(
        "--allow-private-urls",
        action="store_true",
        help="let URL inputs reach loopback, private and link-local addresses (the server's own network)",
    )
    access.add_argument(
        "--data-root",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="train only on datasets below DIR, every file resolved through links (repeatable; default: "
        f"$AUDIOCLAS_DATA_ROOT's folders, separated by '{os.pathsep}'; without any, any path when listening on loopback, "
        "training off beyond it); uploaded datasets go to the first DIR's uploads/ folder",
    )
    access.add_argument(
        "--allow-any-dataset",
        action="store_true",
        help="listening beyond loopback without --data-root, still train on any path on the server "
        "(or $AUDIOCLAS_ALLOW_ANY_DATASET=1)",
    )
    access.add_argument(
        "--allowed-hosts",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests whose Host header names NAME (repeatable; '*' for any; default: "
        "IP addresses, localhost and the --host name)",
    )
    bounds = parser.add_argument_group("bounds")
    bounds.add_argument(
        "--max-upload-mb",
        type=float,
        default=100,
        help="one predict request's files together, or one uploaded dataset archive (default 100)",
    )
    bounds.add_argument("--max-files", type=int, default=20, help="files and URLs in one predict request (default 20)")
    bounds.add_argument("--max-audio-seconds", type=float, default=600, help="decoded audio per input (default 600)")
    bounds.add_argument("--max-archive-members", type=int, default=100, help="entries in one archive (default 100)")
    bounds.add_argument("--max-archive-mb", type=float, default=1024, help="extracted from one archive (default 1024)")
    bounds.add_argument("--max-download-mb", type=float, default=100, help="one URL download (default 100)")
    bounds.add_argument(
        "--max-datasets", type=int, default=20, help="uploaded datasets kept at once; more are refused (default 20)"
    )
    bounds.add_argument(
        "--max-datasets-mb",
        type=float,
        default=10240,
        help="all uploaded datasets together; an archive that does not fit is stopped and refused (default 10240)",
    )
    bounds.add_argument(
        "--url-timeout", type=float, default=15, help="seconds to connect and between reads (default 15)"
    )
    bounds.add_argument(
        "--body-timeout",
        type=float,
        default=30,
        help="seconds a request body may pause between two pieces (default 30)",
    )
    bounds.add_argument(
        "--max-body-seconds", type=float, default=600, help="seconds one request body may take to arrive (default 600)"
    )
    work = parser.add_argument_group("work")
    work.add_argument(
        "--max-jobs", type=int, default=1, help="training jobs running at once; the rest wait (default 1)"
    )
    work.add_argument(
        "--inference-slots", type=int, default=1, help="forward passes of the network at once (default 1)"
    )
    work.add_argument("--weights", type=Path, help="the mn04 checkpoint (default: $AUDIOCLAS_WEIGHTS or the cache)")
    work.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from audioclas.service.app import create_app
    from audioclas.service.settings import ServiceSettings, is_loopback

    positive = {
        "--max-upload-mb": args.max_upload_mb,
        "--max-files": args.max_files,
        "--max-audio-seconds": args.max_audio_seconds,
        "--max-archive-members": args.max_archive_members,
        "--max-archive-mb": args.max_archive_mb,
        "--max-download-mb": args.max_download_mb,
        "--max-datasets": args.max_datasets,
        "--max-datasets-mb": args.max_datasets_mb,
        "--url-timeout": args.url_timeout,
        "--max-jobs": args.max_jobs,
        "--inference-slots": args.inference_slots,
        "--body-timeout": args.body_timeout,
        "--max-body-seconds": args.max_body_seconds,
    }
    bad = [name for name, value in positive.items() if not value > 0]
    if bad:
        print_error(f"{', '.join(bad)} must be more than 0")
        return 2
    missing = [str(root) for root in args.data_root if not root.is_dir()]
    if missing:
        print_error(f"--data-root {missing[0]}: no such folder")
        return 2
    mib = 2**20
    settings = ServiceSettings.from_environment(
        host=args.host,
        port=args.port,
        token=args.token,
        cors_origins=tuple(args.cors),
        allow_private_urls=args.allow_private_urls,
        data_roots=tuple(root.resolve() for root in args.data_root),
        max_upload_bytes=int(args.max_upload_mb * mib),
        max_files=args.max_files,
        max_audio_seconds=args.max_audio_seconds,
        max_archive_members=args.max_archive_members,
        max_archive_bytes=int(args.max_archive_mb * mib),
        max_download_bytes=int(args.max_download_mb * mib),
        max_datasets=args.max_datasets,
        max_datasets_bytes=int(args.max_datasets_mb * mib),
        url_timeout=args.url_timeout,
        max_jobs=args.max_jobs,
        inference_slots=args.inference_slots,
        weights=args.weights,
        allow_any_dataset=args.allow_any_dataset,
        allowed_hosts=tuple(args.allowed_hosts),
        body_read_timeout=args.body_timeout,
        max_body_seconds=args.max_body_seconds,
    )
    if not settings.token and not is_loopback(args.host):
        stderr.print(
            f"warning: listening on {args.host} without a token: anyone who reaches it may train and "
            "delete models (set --token or $AUDIOCLAS_TOKEN)",
            style="yellow",
        )
    refusal = settings.training_refusal()
    if refusal:
        stderr.print(f"note: {refusal}", style="yellow")
    app = create_app(settings)
    stderr.print(f"audioclas: http://{_url_host(args.host)}:{args.port}/  (API docs: /docs; pid {os.getpid()})")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=10)
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
