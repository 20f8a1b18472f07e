"""The CLI's choice of OMP_WAIT_POLICY (loopynet/omp_policy.py): PASSIVE where loopynet's compiled kernels
run or the machine is overloaded, OpenMP's default otherwise, never over the user's value."""

import os
import subprocess
import sys

import pytest

from loopynet.models import kernel_sources
from loopynet.omp_policy import choose_wait_policy


def test_compiled_kernels_get_passive_waiting_even_on_an_idle_machine():
    env = {}
    assert choose_wait_policy(env, compiled_kernels=True, load=0.0, cpus=2) == "PASSIVE"
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_torch_path_on_an_idle_machine_keeps_openmp_default():
    env = {}
    assert choose_wait_policy(env, compiled_kernels=False, load=1.2, cpus=2) is None
    assert env == {}


def test_torch_path_on_an_overloaded_machine_gets_passive_waiting():
    env = {}
    assert choose_wait_policy(env, compiled_kernels=False, load=2.0, cpus=2) == "PASSIVE"
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}


@pytest.mark.parametrize("compiled", [True, False])
def test_the_users_setting_is_never_overridden(compiled):
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert choose_wait_policy(env, compiled_kernels=compiled, load=50.0, cpus=2) == "ACTIVE"
    assert env == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_kernels_expected_only_where_they_can_run(monkeypatch, tmp_path):
    monkeypatch.setattr(kernel_sources, "installed_library", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no compiler
    monkeypatch.delenv("CC", raising=False)
    assert not kernel_sources.kernels_expected("cpu", {})  # neither a library nor a compiler
    monkeypatch.setattr(kernel_sources, "installed_library", lambda: (tmp_path / "lib.so", "x86_64_v4"))
    assert kernel_sources.kernels_expected("cpu", {})
    assert kernel_sources.kernels_expected("auto", {})
    assert not kernel_sources.kernels_expected("cuda", {})  # cuDNN, not the C kernels
    assert not kernel_sources.kernels_expected("cpu", {"LOOPYNET_KERNEL": "torch"})


@pytest.mark.parametrize("kernel, seen", [(None, "PASSIVE"), ("torch", "None")])
def test_cli_sets_passive_only_where_its_kernels_run(kernel, seen):
    """`loopynet` itself, in a fresh process on an idle machine (os.getloadavg faked): PASSIVE reaches torch's
    environment with the compiled kernels (here: installed or built with this machine's compiler), nothing
    with LOOPYNET_KERNEL=torch; and torch is not loaded before the choice."""
    code = ("import os, sys; os.getloadavg = lambda: (0.0, 0.0, 0.0); from loopynet import cli; "
            "cli.COMMANDS['summary'] = lambda args: print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules); "
            "sys.exit(cli.main(['summary', '--units', '3']))")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "LOOPYNET_KERNEL")}
    if kernel:
        env["LOOPYNET_KERNEL"] = kernel
    assert kernel_sources.kernels_expected("auto", env) == (kernel is None)  # this machine has a library or cc
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [seen, "False"]


def test_tagger_commands_keep_the_load_based_choice():
    """`loopynet tag ...` on an idle machine: no OMP_WAIT_POLICY (its training measured faster with OpenMP's
    default idle, 662 against 574 samples/s PASSIVE)."""
    code = ("import os, sys; os.getloadavg = lambda: (0.0, 0.0, 0.0); from loopynet import cli; "
            "cli.COMMANDS['tag'] = lambda args: print(os.environ.get('OMP_WAIT_POLICY')); "
            "sys.exit(cli.main(['tag', 'predict', 'model', 'text']))")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "LOOPYNET_KERNEL")}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["None"]
