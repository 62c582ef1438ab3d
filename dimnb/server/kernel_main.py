"""How a dashboard kernel starts: ipykernel, without the debugger.

``python -m dimnb.server.kernel_main -f CONNECTION_FILE`` replaces
``python -m ipykernel_launcher`` for dashboard kernels (``kernels.DashboardKernel``).
ipykernel loads debugpy at start when it is installed: about 8 MB of every
kernel's memory for a debugger that a dashboard never offers (nothing may
attach to a user's kernel). Marking it absent makes ipykernel start without it.
"""

from __future__ import annotations

import sys

NOT_LOADED = ("debugpy",)


def main() -> None:
    for name in NOT_LOADED:
        sys.modules[name] = None  # type: ignore[assignment]  # "import debugpy" now raises ImportError
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance()


if __name__ == "__main__":
    main()
