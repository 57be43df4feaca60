"""The shell: the `bordermon` command, the demo and the live view. It imports the domain packages
(streams, producers, dashboards) and the kernel (the rest of `bordermon`); nothing imports it."""
