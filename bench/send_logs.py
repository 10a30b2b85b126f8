"""Sends HAProxy's datagrams (one per line of FILE) to a unix datagram
socket at RATE per second for SECONDS, paced every millisecond; prints how
many were sent. Bounded: it stops by itself.

    python3 bench/send_logs.py SOCKET RATE SECONDS FILE
"""
import socket
import sys
import time

path, rate, seconds, fixture = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
lines = [line + b"\n" for line in open(fixture, "rb").read().splitlines() if line]
sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sent = 0
start = time.monotonic()
while True:
    elapsed = time.monotonic() - start
    if elapsed >= seconds:
        break
    due = min(int(elapsed * rate), int(seconds * rate))
    while sent < due:
        sender.sendto(lines[sent % len(lines)], path)
        sent += 1
    time.sleep(0.001)
print(sent)
