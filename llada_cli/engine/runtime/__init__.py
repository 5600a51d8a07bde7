"""Where the work runs: the device and its dtype (device.py), the processes (distributed.py), and
weights sharded over them (sharding.py). Only the device name's check is here: it loads no torch."""

from __future__ import annotations

import re

from ..errors import UsageError, named

DEVICE_NAMES = "auto, cpu, cuda, cuda:N or mps"


def check_device_name(name: str) -> None:
    """Refuse a name no machine has, before any work (which device is there is torch's to say)."""
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d{1,6})?", name):
        raise UsageError(f"{named('device')} {name!r}: use {DEVICE_NAMES}")
