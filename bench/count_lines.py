#!/usr/bin/env python3
"""A loopback Graphite sink for benchmarks: it reads and counts lines, nothing else.

    count_lines.py PORT_FILE

Listens on 127.0.0.1 (a free port, written to PORT_FILE), accepts any number
of connections, and reads them all. Traffic comes in bursts (one per round a
sender delivers); a burst ends after 2 s without data. For each burst it
prints one line, `lines bytes seconds`, where seconds run from the first byte
received to the last. It runs until it is killed.
"""
import os
import selectors
import socket
import sys
import time

QUIET = 2.0


def main():
    port_file = sys.argv[1]
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.setblocking(False)
    with open(port_file + ".tmp", "w") as out:
        out.write(f"{server.getsockname()[1]}\n")
    os.rename(port_file + ".tmp", port_file)

    events = selectors.DefaultSelector()
    events.register(server, selectors.EVENT_READ)
    buffer = bytearray(1 << 20)
    lines = size = 0
    first = last = None
    while True:
        ready = events.select(timeout=QUIET)
        if not ready and first is not None:
            print(lines, size, f"{last - first:.6f}", flush=True)
            lines = size = 0
            first = last = None
        for key, _ in ready:
            if key.fileobj is server:
                connection, _ = server.accept()
                connection.setblocking(False)
                events.register(connection, selectors.EVENT_READ)
                continue
            try:
                count = key.fileobj.recv_into(buffer)
            except BlockingIOError:
                continue
            if count == 0:
                events.unregister(key.fileobj)
                key.fileobj.close()
                continue
            now = time.perf_counter()
            if first is None:
                first = now
            last = now
            size += count
            lines += buffer.count(b"\n", 0, count)


if __name__ == "__main__":
    main()
