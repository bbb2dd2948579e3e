"""Hook a run's :class:`RequestObserver` into each SDK's HTTP layer.

botocore has an event system for this; the Azure and Google SDKs both send through a
``requests`` session, so their adapters' ``send`` is wrapped. Every attempt is seen,
including the SDKs' own retries, which is what rate limits and throttle detection need.
"""

from __future__ import annotations

from typing import Any

import requests

from cloudshift.storage.base import RequestObserver


def observe_session(session: requests.Session, observer: RequestObserver | None) -> None:
    if observer is None:
        return
    for adapter in set(session.adapters.values()):
        original = adapter.send

        def send(request: Any, *args: Any, _send: Any = original, **kwargs: Any) -> Any:
            observer.before_request()
            response = _send(request, *args, **kwargs)
            observer.after_response(int(response.status_code))
            return response

        adapter.send = send  # type: ignore[method-assign]


def observe_botocore(client: Any, observer: RequestObserver | None) -> None:
    if observer is None:
        return

    def before_send(**_kwargs: Any) -> None:
        observer.before_request()  # returning None lets botocore send the request

    def needs_retry(response: Any = None, **_kwargs: Any) -> None:
        if response is not None:
            observer.after_response(int(response[0].status_code))

    events = client.meta.events
    events.register("before-send.s3", before_send)
    events.register_first("needs-retry.s3", needs_retry)
