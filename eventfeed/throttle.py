"""Throttles against guessing: wrong API keys per client address, and what a locked-out sign-in
sees (django-axes counts sign-in failures per username and per address; see settings.py).

Wrong keys are counted in Django's cache (Redis when REDIS_URL is set, so every process shares the
count) in fixed windows: after EVENTFEED_API_KEY_FAILURES wrong keys from one address within a
window of EVENTFEED_API_KEY_WINDOW seconds, every request from that address that carries a key is
refused until the window ends, even one with a right key (the guess may just have succeeded).
"""

from __future__ import annotations

import logging
import math
import time

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

log = logging.getLogger(__name__)


def _window(now: float) -> tuple[int, int]:
    """The current window's index and the seconds left in it."""
    size = settings.EVENTFEED_API_KEY_WINDOW
    index = int(now // size)
    return index, max(1, math.ceil((index + 1) * size - now))


def _counter(address: str, index: int) -> str:
    return f"eventfeed:wrong-key:{address}:{index}"


def key_retry_after(address: str | None) -> int | None:
    """Seconds until this address may present a key again, or None when it may now."""
    if not address:
        return None
    index, left = _window(time.time())
    try:
        failures = cache.get(_counter(address, index), 0)
    except Exception as e:
        # The cache (Redis) is away: keys are still checked one by one, only not throttled.
        # Refusing every producer for it would lose events over a guard against guessing.
        log.warning("throttle: the cache is unavailable (%s); wrong keys are not counted meanwhile", e)
        return None
    return left if failures >= settings.EVENTFEED_API_KEY_FAILURES else None


def wrong_key(address: str | None) -> None:
    if not address:
        return
    index, left = _window(time.time())
    counter = _counter(address, index)
    try:
        # add() is a no-op when the counter exists; incr() is atomic in Redis.
        cache.add(counter, 0, timeout=left + 1)
        try:
            cache.incr(counter)
        except ValueError:  # expired between the two calls
            cache.set(counter, 1, timeout=left + 1)
    except Exception as e:  # the cache is away: see key_retry_after
        log.warning("throttle: the cache is unavailable (%s); a wrong key was not counted", e)


def forget(address: str) -> None:
    """Drop an address's count (tests, or an operator who unblocks an address)."""
    cache.delete(_counter(address, _window(time.time())[0]))


def too_many_wrong_keys_message(retry_after: int) -> str:
    return (f"Too many wrong API keys from this address: try again in {retry_after} s "
            f"(after {settings.EVENTFEED_API_KEY_FAILURES} wrong keys within {settings.EVENTFEED_API_KEY_WINDOW} s).")


class SignInThrottle(AxesStandaloneBackend):
    """django-axes' backend, except for authenticate() calls without a request (scripts, tests,
    `Client.login`): those did not come over the network, and axes would refuse them outright."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def signin_locked_out(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """django-axes' AXES_LOCKOUT_CALLABLE: the sign-in page again, with why and for how long."""
    from django.contrib.auth.forms import AuthenticationForm

    minutes = math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    # Unbound: validating it would try the password once more.
    form = AuthenticationForm(request, initial={"username": request.POST.get("username", "")})
    message = (f"Too many failed sign-ins for this username or from this address. Try again in {minutes} "
               f"minute{'s' if minutes != 1 else ''}; every further attempt until then starts the wait again.")
    response = render(request, "registration/login.html",
                      {"form": form, "locked_out": message, "next": request.POST.get("next", "")}, status=429)
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response
