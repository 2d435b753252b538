"""How much of a response the kernel may hold for a client that has not taken it: MAX_UNSENT_BYTES per connection.

A stream's run waits when its writes wait (`runs/runner.py`), and a write waits only once the kernel's send
buffer of the connection is full. Linux grows that buffer to megabytes (tcp_wmem, 4 MiB by default), and on
loopback or a fast link it fills up to that before the write waits: that much of the answer has been read from
the LLM, and kept by the run, for a client that reads nothing. TCP_NOTSENT_LOWAT makes a write wait once this
many bytes are written but not yet sent, while leaving alone the bytes in flight (so a fast client on a long link
is as fast as before), which SO_SNDBUF would cap too.

Hypercorn has no setting for it and gives the app no socket, but connections inherit the option from the
socket they were accepted on: the service sets it on its listening sockets (`python -m` as it creates them,
`hypercorn` at startup, before it accepts anything).

Part of the engine: the template's code, updated by `cruft update`; not edited by hand.
"""

import contextlib
import logging
import os
import socket
from collections.abc import Iterable

logger = logging.getLogger(__name__)

# On Linux and macOS; elsewhere the kernel's own limit applies.
NOTSENT_LOWAT: int | None = getattr(socket, "TCP_NOTSENT_LOWAT", None)


def limit_unsent_bytes(sockets: Iterable[socket.socket], limit: int) -> int:
    """Set the bound on the TCP sockets among `sockets`; how many got it. `limit` 0 leaves the kernel's default."""
    if not limit or NOTSENT_LOWAT is None:
        return 0
    done = 0
    for sock in sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, NOTSENT_LOWAT, limit)
            except OSError as error:
                logger.warning("Could not bound the unsent bytes of %s: %s", sock, error)
                continue
            done += 1
    return done


def limit_unsent_bytes_of_listeners(limit: int) -> int:
    """Set the bound on every listening TCP socket of this process (found in /proc/self/fd); how many got it.

    For `hypercorn <package>.asgi:app`, which creates its sockets before the app starts, hands them to no one, and
    calls `listen()` on them only after the app started: a listener here is a TCP socket that is bound and not
    connected. Setting an option on a copy of a descriptor sets it on the socket itself. Any other server
    listening in this process (a test's) gets it too: it changes when writes wait, never what is sent.
    """
    if not limit or NOTSENT_LOWAT is None:
        return 0
    try:
        descriptors = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc (macOS): `python -m` still sets it
        return 0
    listeners = []
    for descriptor in descriptors:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{descriptor}").startswith("socket:"):
                sock = socket.socket(fileno=os.dup(descriptor))
                if _is_listener(sock):
                    listeners.append(sock)
                else:
                    sock.close()
    try:
        return limit_unsent_bytes(listeners, limit)
    finally:
        for sock in listeners:
            sock.close()  # the copy only


def _is_listener(sock: socket.socket) -> bool:
    """A TCP socket that listens, or is bound to a port and connected to nothing (it will listen)."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        return False
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        return True
    if sock.getsockname()[1] == 0:
        return False
    try:
        sock.getpeername()
    except OSError:
        return True  # not connected
    return False
