"""Measures how long HAProxy takes to show Consul changes and to have its
servers back after a reload (bench/backends.sh).

    python3 converge.py changes CONSUL_ADDRESS STATS_SOCKET BACKEND CHANGES LABEL PORT...
    python3 converge.py reloads CONSUL_ADDRESS STATS_SOCKET MASTER_SOCKET RELOADS BACKEND... -- PORT...

`changes` starts by registering the first three PORTs as instances of
service `web` and waiting for them; then makes CHANGES changes, alternately
registering the next port and deregistering the oldest registered one, and
times each from the moment Consul's API answered until `show stat` shows it
(a new server UP or without check; a removed one draining, in maintenance
or gone). Prints the median and the max in milliseconds.

`reloads` registers the PORTs, waits for every BACKEND to serve them, then
reloads HAProxy RELOADS times by the master CLI, and times each from the
moment the master took the command until a worker with a new PID serves
them all again in each BACKEND; prints each backend's median and max.
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


def ask(unix_socket, command):
    """One command to a runtime-API socket; the whole reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stream:
        stream.settimeout(5)
        stream.connect(unix_socket)
        stream.sendall(command.encode() + b"\n")
        stream.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = stream.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode()


def serving_ports(stats_socket, backend):
    """The ports of the backend's servers that serve (not draining or in maintenance)."""
    lines = ask(stats_socket, "show stat").splitlines()
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


def pid(stats_socket):
    for line in ask(stats_socket, "show info").splitlines():
        if line.startswith("Pid: "):
            return int(line[5:])
    raise SystemExit("show info has no Pid")


def summary(milliseconds, what):
    return (f"median {statistics.median(milliseconds):.0f} ms, max {max(milliseconds)} ms "
            f"over {len(milliseconds)} {what} ({' '.join(map(str, milliseconds))})")


def reloads(address, stats_socket, master_socket, count, rest):
    split = rest.index("--")
    backends, ports = rest[:split], {int(port) for port in rest[split + 1:]}
    for port in ports:
        register(address, port)
    for backend in backends:
        wait_for(stats_socket, backend, ports)
    times = {backend: [] for backend in backends}
    for _ in range(int(count)):
        old = pid(stats_socket)
        started = time.monotonic()
        ask(master_socket, "reload")
        pending = set(backends)
        while pending and time.monotonic() - started < 30:
            try:
                serving_pid = pid(stats_socket)
                for backend in sorted(pending):
                    if serving_pid != old and serving_ports(stats_socket, backend) == ports:
                        times[backend].append(round((time.monotonic() - started) * 1000))
                        pending.discard(backend)
            except OSError:
                pass  # the socket between two workers
            time.sleep(0.002)
        if pending:
            raise SystemExit(f"{sorted(pending)} not back within 30 s of a reload")
        time.sleep(0.5)  # the old worker leaves
    for port in ports:
        deregister(address, port)
    for backend in backends:
        print(f"{backend}: every server serving again {summary(times[backend], 'reloads')}")


def main():
    if sys.argv[1] == "reloads":
        reloads(*sys.argv[2:6], sys.argv[6:])
        return
    address, stats_socket, backend, changes, label = sys.argv[2:7]
    ports = [int(port) for port in sys.argv[7:]]
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
    print(f"{label}: {summary(milliseconds, 'changes')}")


if __name__ == "__main__":
    main()
