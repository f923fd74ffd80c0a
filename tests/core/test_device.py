"""Device names: cuda:N accepted everywhere, the GPU index checked against the machine."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from chggen_flows.core.device import check_device_name, resolve_device
from chggen_flows.errors import InputError
from chggen_flows.settings import Settings


@pytest.fixture
def two_gpus(monkeypatch):
    """A machine that says it has two CUDA GPUs (torch.device needs no real GPU)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "CUDA:1", " cpu "])
def test_device_names_accepted(name):
    assert check_device_name(name) == name.strip()
    assert Settings(device=name).device == name.strip()


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:-1", "cuda:x", "cuda0", "mps", ""])
def test_bad_device_names_are_input_errors(name):
    with pytest.raises(InputError, match="unknown device") as error:
        check_device_name(name)
    assert "cuda:N" in error.value.hint
    with pytest.raises(ValidationError, match="unknown device"):
        Settings(device=name)


def test_cuda_index_resolves_when_the_gpu_exists(two_gpus):
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("CUDA:0") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("auto").type == "cuda"
    assert resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)


def test_cuda_index_beyond_the_machine_is_an_input_error(two_gpus):
    with pytest.raises(InputError, match="2 visible GPU") as error:
        resolve_device("cuda:2")
    assert "cuda:0 to cuda:1" in error.value.hint
    with pytest.raises(InputError, match="2 visible GPU"):
        resolve_device(torch.device("cuda", 5))


def test_cuda_without_a_gpu_is_an_input_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:0"):
        with pytest.raises(InputError, match="no CUDA GPU is visible"):
            resolve_device(name)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
