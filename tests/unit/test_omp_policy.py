"""The CLI's choice of OMP_WAIT_POLICY (loopynet/omp_policy.py): OpenMP's default unless overloaded."""

import os
import subprocess
import sys

from loopynet.omp_policy import choose_wait_policy


def test_idle_machine_keeps_openmp_default():
    env = {}
    assert choose_wait_policy(env, load=1.2, cpus=2) is None
    assert env == {}


def test_overloaded_machine_gets_passive_waiting():
    env = {}
    assert choose_wait_policy(env, load=2.0, cpus=2) == "PASSIVE"
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_the_users_setting_is_never_overridden():
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert choose_wait_policy(env, load=50.0, cpus=2) == "ACTIVE"
    assert env == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_cli_leaves_the_environment_alone_on_an_idle_machine(tmp_path):
    """`loopynet` itself, in a fresh process: with the load below the CPU count (faked through
    os.getloadavg), no OMP_WAIT_POLICY reaches torch's environment."""
    code = ("import os, sys; os.getloadavg = lambda: (0.0, 0.0, 0.0); from loopynet import cli; "
            "cli.COMMANDS['summary'] = lambda args: print(os.environ.get('OMP_WAIT_POLICY')); "
            "sys.exit(cli.main(['summary', '--units', '3']))")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "None"
