"""A registered Lua script run inside a pipeline in the pipeline's one round trip.

redis-py's own way, ``script(keys=..., args=..., client=pipe)``, makes the pipeline ask the server
``SCRIPT EXISTS`` in a round trip of its own before every ``execute`` (``Pipeline.load_scripts``): on the
paths that pipeline a script (the drain's analytics forward, a status with its analytics event, a commit
with ``WAIT``) that doubled the round trips. Here the script is queued as a bare ``EVALSHA``; a server
that lacks it (restarted, failed over, ``SCRIPT FLUSH``) answers ``NOSCRIPT`` in the pipeline's results,
and the caller runs it again through the registered script, which loads it.

    index = pipelined_script.queue(pipe, script, keys, args)
    results = pipe.execute(raise_on_error=False)
    pipelined_script.raise_errors(results, but=[index])  # the pipeline's other commands
    answer = pipelined_script.settle(results, index, script, keys, args)
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT


def queue(pipe: Pipeline, script: Script, keys: Sequence[KeyT], args: Sequence[EncodableT]) -> int:
    """Queue ``script`` on ``pipe`` as ``EVALSHA``; its index in the pipeline's results."""
    pipe.evalsha(script.sha, len(keys), *keys, *args)
    return len(pipe) - 1


def missing(results: Sequence[Any], index: int) -> bool:
    """Whether the server lacked the script (the pipeline's other commands ran)."""
    return isinstance(results[index], NoScriptError)


def raise_errors(results: Sequence[Any], *, but: Collection[int] = ()) -> None:
    """Raise the first error among ``results`` (``execute(raise_on_error=False)``), a NOSCRIPT at ``but`` apart."""
    for i, result in enumerate(results):
        if isinstance(result, Exception) and not (i in but and isinstance(result, NoScriptError)):
            raise result


def settle(results: Sequence[Any], index: int, script: Script, keys: Sequence[KeyT],
           args: Sequence[EncodableT]) -> Any:
    """The script's answer: from the results, or, when the server lacked it, from running it now (which
    loads it): for a script whose effect may follow the pipeline's other commands. Check those first
    (``raise_errors(results, but=[index])``)."""
    result = results[index]
    if isinstance(result, NoScriptError):
        return script(keys=keys, args=args)
    if isinstance(result, Exception):
        raise result
    return result
