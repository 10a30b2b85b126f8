"""Waits (at most 120 s) until the logs daemon at ADDRESS has confirmed,
dropped or buffered SENT lines and its counters stop moving, then prints
one row: rate, sent, confirmed by Kafka, dropped, left in the disk buffer,
the daemon's CPU seconds per 100,000 lines and its peak RSS.

    python3 bench/settle_logs.py ADDRESS SENT PID RATE
"""
import sys
import time
import urllib.request

address, sent, pid, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])


def metrics():
    text = urllib.request.urlopen(f"http://{address}/metrics", timeout=5).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def accounted(values):
    dropped = sum(v for k, v in values.items() if k.startswith("haproxykafka_saturation_errors{")
                  and 'kafka-msg' not in k)
    return values["haproxykafka_valid_messages_total"], dropped


deadline = time.monotonic() + 120
last = None
while time.monotonic() < deadline:
    values = metrics()
    confirmed, dropped = accounted(values)
    state = (confirmed, dropped, values["haproxykafka_buffer_bytes"])
    if confirmed + dropped >= sent and state == last:
        break
    last = state
    time.sleep(1)
values = metrics()
confirmed, dropped = accounted(values)
with open(f"/proc/{pid}/stat") as stat:
    fields = stat.read().rsplit(")", 1)[1].split()
cpu = (int(fields[11]) + int(fields[12])) / 100.0
rss = next(line.split()[1] for line in open(f"/proc/{pid}/status") if line.startswith("VmHWM"))
print(f"{rate:8d} {sent:10d} {int(confirmed):10d} {int(dropped):8d} {int(values['haproxykafka_buffered_messages_total']):8d}"
      f" {cpu / max(sent, 1) * 100000:10.2f} s {int(rss) / 1024:8.1f} MB")
