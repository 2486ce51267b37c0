import time


def wait_until(predicate, what="condition", *, timeout=30, step=0.1, explain=None):
    """Poll `predicate` until it returns something truthy and return that; fail after `timeout` seconds
    (with what `explain()` returns in the message, when given: the state a failure should show).

    Work done by a real worker, beat or server arrives asynchronously; this waits for the outcome, it
    does not time it.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f": {explain()}" if explain is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(step)
