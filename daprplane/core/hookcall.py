"""Calling a hook through pluggy with each plugin's failure kept to that plugin.

pluggy stops a hook call at the first implementation that raises: the plugins after it never
run. Components that serve requests cannot let one broken plugin take the others down, so
:func:`call_each` runs the hook through pluggy's own executor (its order, ``tryfirst`` and
``trylast``, new-style ``wrapper=True`` and old-style ``hookwrapper=True`` wrappers, tracing and
``firstresult`` are exactly pluggy's) with every implementation behind a guard: one that raises
is reported to ``on_error`` and then behaves as if it had returned ``None``; a wrapper that
raises is reported and then passes the call through untouched. ``on_error`` may itself raise to
end the whole call, for a component whose policy is to fail.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Any

import pluggy

#: Calls the plugin's implementation with these arguments (those it declares are picked out).
Invoke = Callable[[Mapping[str, Any]], Any]
#: Runs one plain implementation: gets the arguments pluggy passes it, and returns its result.
Around = Callable[[pluggy.HookImpl, dict[str, Any], Invoke], Any]
OnError = Callable[[pluggy.HookImpl, Exception], None]


class WrapperMisbehaved(Exception):
    """A wrapper that did not yield exactly once."""


def call_each(
    caller: pluggy.HookCaller,
    kwargs: Mapping[str, Any],
    on_error: OnError,
    around: Around | None = None,
) -> Any:
    """Call ``caller`` with ``kwargs`` as pluggy would, each implementation isolated.

    ``around`` (optional) runs each plain implementation, to give it copies of the arguments
    or check what it returns; raising there counts as that plugin's failure. Returns what the
    pluggy call returns: the list of non-``None`` results, or one result for ``firstresult``.
    """
    if caller.is_historic():
        raise ValueError(f"{caller.name} is historic: call it with call_historic")
    guarded = [_guarded(impl, on_error, around) for impl in caller.get_hookimpls()]
    firstresult = bool(caller.spec and caller.spec.opts.get("firstresult"))
    # ``call_extra`` cannot leave the original implementations out, so the guarded ones go
    # straight to the executor the caller was built with: pluggy's own, with its monitoring.
    return caller._hookexec(caller.name, guarded, dict(kwargs), firstresult)


def _guarded(impl: pluggy.HookImpl, on_error: OnError, around: Around | None) -> pluggy.HookImpl:
    if impl.wrapper:
        function: Callable[..., Any] = _guard_wrapper(impl, on_error)
    elif impl.hookwrapper:
        function = _guard_old_style_wrapper(impl, on_error)
    else:
        function = _guard_plain(impl, on_error, around)
    guarded = pluggy.HookImpl(impl.plugin, impl.plugin_name, function, impl.opts)
    # pluggy passes arguments by the names the implementation declares, read from the function
    # it was given; the guard takes them from what it guards.
    guarded.argnames = impl.argnames  # type: ignore[misc]
    guarded.kwargnames = impl.kwargnames  # type: ignore[misc]
    return guarded


def _guard_plain(
    impl: pluggy.HookImpl, on_error: OnError, around: Around | None
) -> Callable[..., Any]:
    def invoke(arguments: Mapping[str, Any]) -> Any:
        return impl.function(*[arguments[name] for name in impl.argnames])

    def guarded(*args: Any) -> Any:
        arguments = dict(zip(impl.argnames, args, strict=True))
        try:
            return invoke(arguments) if around is None else around(impl, arguments, invoke)
        except Exception as error:
            on_error(impl, error)
            return None

    return guarded


def _guard_wrapper(
    impl: pluggy.HookImpl, on_error: OnError
) -> Callable[..., Generator[None, Any, Any]]:
    def guarded(*args: Any) -> Generator[None, Any, Any]:
        try:
            teardown: Generator[None, Any, Any] = impl.function(*args)  # type: ignore[assignment]
            next(teardown)
        except Exception as error:
            on_error(impl, _not_yielded(error))
            return (yield)
        try:
            result = yield
        except Exception as inner:
            try:
                teardown.throw(inner)
            except StopIteration as stop:  # the wrapper handled the exception
                return stop.value
            except Exception as raised:
                if raised is not inner:
                    on_error(impl, raised)
                raise inner from None
            teardown.close()
            on_error(impl, WrapperMisbehaved("the wrapper yielded more than once"))
            raise inner from None
        try:
            teardown.send(result)
        except StopIteration as stop:
            return stop.value
        except Exception as raised:
            on_error(impl, raised)
            return result
        teardown.close()
        on_error(impl, WrapperMisbehaved("the wrapper yielded more than once"))
        return result

    return guarded


def _guard_old_style_wrapper(
    impl: pluggy.HookImpl, on_error: OnError
) -> Callable[..., Generator[None, pluggy.Result[Any], None]]:
    def guarded(*args: Any) -> Generator[None, pluggy.Result[Any], None]:
        try:
            teardown: Generator[None, Any, None] = impl.function(*args)  # type: ignore[assignment]
            next(teardown)
        except Exception as error:
            on_error(impl, _not_yielded(error))
            yield
            return
        outcome = yield
        try:
            teardown.send(outcome)
        except StopIteration:
            return
        except Exception as raised:
            on_error(impl, raised)
            return
        teardown.close()
        on_error(impl, WrapperMisbehaved("the wrapper yielded more than once"))

    return guarded


def _not_yielded(error: Exception) -> Exception:
    if isinstance(error, StopIteration):
        return WrapperMisbehaved("the wrapper returned without yielding")
    return error
