#!/usr/bin/env python3
"""The CLI's passphrase prompt on a real terminal (a pty): what is typed is
not echoed, and echo is back on the terminal after the prompt, both when
the line is entered and when Ctrl-C interrupts it.

Run by `make client-e2e`: python3 tests/client/test_prompt.py build/flamingo-sync
The state points at a closed loopback port, so after the prompt the
command fails with exit 6 (unreachable) without any server.
"""
import json
import os
import pty
import select
import sys
import tempfile
import termios
import time

CLI = os.path.abspath(sys.argv[1])


def run(keys, want_exit):
    with tempfile.TemporaryDirectory() as home:
        d = os.path.join(home, "flamingo-sync")
        os.makedirs(d, mode=0o700)
        with open(os.path.join(d, "state.json"), "w") as f:
            json.dump({"server": "http://127.0.0.1:9",
                       "token": "flm_sync_" + "ab" * 16}, f)
        pid, fd = pty.fork()
        if pid == 0:
            env = {"PATH": os.environ.get("PATH", ""), "HOME": home,
                   "XDG_CONFIG_HOME": home}
            os.execve(CLI, [CLI, "pull", "history"], env)
        out = b""
        deadline = time.time() + 20
        while b"passphrase:" not in out:
            assert time.time() < deadline, out
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                out += os.read(fd, 1024)
        # the prompt is up: echo must be off now
        attrs = termios.tcgetattr(fd)
        assert not (attrs[3] & termios.ECHO), "echo is on during the prompt"
        os.write(fd, keys)
        rest = b""
        status = None
        while status is None:
            assert time.time() < deadline, rest
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    rest += os.read(fd, 1024)
                except OSError:
                    pass  # the child closed the terminal
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
        code = os.waitstatus_to_exitcode(status)
        attrs = termios.tcgetattr(fd)
        assert attrs[3] & termios.ECHO, "echo left off after the prompt"
        os.close(fd)
        assert b"s3cret-typed" not in out + rest, "the passphrase was echoed"
        assert code == want_exit, (code, out + rest)
        return out + rest


def main():
    # entered: the command goes on and fails to reach the server (exit 6)
    run(b"s3cret-typed\n", 6)
    # Ctrl-C at the prompt: interrupted, usage-class exit (2)
    run(b"s3cret-typed\x03", 2)
    print("prompt: 2 checks passed")


if __name__ == "__main__":
    main()
