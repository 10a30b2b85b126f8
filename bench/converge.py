"""Measures how long HAProxy takes to show Consul changes (bench/backends.sh).

    python3 converge.py CONSUL_ADDRESS STATS_SOCKET BACKEND CHANGES LABEL PORT...

Starts by registering the first three PORTs as instances of service `web`
and waiting for them; then makes CHANGES changes, alternately registering
the next port and deregistering the oldest registered one, and times each
from the moment Consul's API answered until `show stat` shows it (a new
server UP or without check; a removed one draining, in maintenance or
gone). Prints the median and the max in milliseconds.
"""

import json
import socket
import statistics
import sys
import time
import urllib.request


def consul(address, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(f"http://{address}{path}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def register(address, port):
    consul(address, "PUT", "/v1/agent/service/register", {
        "ID": f"web{port}", "Name": "web", "Address": "127.0.0.1", "Port": port,
        "Check": {"TTL": "1h", "Status": "passing"},
    })


def deregister(address, port):
    consul(address, "PUT", f"/v1/agent/service/deregister/web{port}")


def serving_ports(stats_socket, backend):
    """The ports of the backend's servers that serve (not draining or in maintenance)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stream:
        stream.settimeout(5)
        stream.connect(stats_socket)
        stream.sendall(b"show stat\n")
        stream.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = stream.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    lines = b"".join(chunks).decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    columns = {name: index for index, name in enumerate(header)}
    ports = set()
    for line in lines[1:]:
        cells = line.split(",")
        if len(cells) < len(header) or cells[0] != backend or cells[1] in ("BACKEND", "FRONTEND"):
            continue
        status = cells[columns["status"]]
        if status in ("UP", "no check"):
            ports.add(int(cells[columns["addr"]].rsplit(":", 1)[1]))
    return ports


def wait_for(stats_socket, backend, wanted, limit=30.0):
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if serving_ports(stats_socket, backend) == wanted:
            return time.monotonic() - started
        time.sleep(0.002)
    raise SystemExit(f"{backend} did not come to {sorted(wanted)} within {limit} s")


def main():
    address, stats_socket, backend, changes, label = sys.argv[1:6]
    ports = [int(port) for port in sys.argv[6:]]
    registered = ports[:3]
    for port in registered:
        register(address, port)
    wait_for(stats_socket, backend, set(registered))
    spare = ports[3:]
    times = []
    for change in range(int(changes)):
        if change % 2 == 0:
            port = spare.pop(0)
            register(address, port)
            registered.append(port)
        else:
            port = registered.pop(0)
            deregister(address, port)
            spare.append(port)
        times.append(wait_for(stats_socket, backend, set(registered)))
    for port in registered:
        deregister(address, port)
    milliseconds = [round(seconds * 1000) for seconds in times]
    print(f"{label}: median {statistics.median(milliseconds):.0f} ms, max {max(milliseconds)} ms "
          f"over {len(milliseconds)} changes ({' '.join(map(str, milliseconds))})")


if __name__ == "__main__":
    main()
