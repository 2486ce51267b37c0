import os
import signal
import subprocess


def stop_process(proc, *, sig=signal.SIGTERM, group=False, timeout=15):
    """Stop a child process: send `sig` (to its whole process group if `group`, e.g. a prefork worker
    started with start_new_session=True), wait up to `timeout` seconds, then SIGKILL it. Returns its exit code.
    A process that already exited is fine."""
    try:
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
        return proc.wait()
