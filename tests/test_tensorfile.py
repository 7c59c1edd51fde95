"""Training state in safetensors: everything a checkpoint holds comes back, and nothing is unpickled."""
import pickle

import numpy as np
import pytest
import torch

from prodlens.errors import ProdlensError
from prodlens.model import resolve_checkpoint
from prodlens.runs import convert_legacy
from prodlens.tensorfile import load_state, save_state


def _state():
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    model(torch.ones(2, 4)).sum().backward()
    optimizer.step()
    return model, optimizer, {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 7,
                              "history": [{"total": 1.5, "R@1": {"live2page": 0.25}}], "best": {"score": float("-inf")},
                              "products": ["a", "b"], "rng": torch.get_rng_state(), "ids": np.arange(5),
                              "none": None, "pair": (1, "x"), "by_int": {3: "c"}}


def test_a_training_state_round_trips(tmp_path):
    model, optimizer, state = _state()
    save_state(tmp_path / "s.safetensors", state)
    back = load_state(tmp_path / "s.safetensors")
    assert all(torch.equal(back["model"][k], v) for k, v in state["model"].items())
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.98)  # tuples stay tuples
    assert torch.equal(back["optimizer"]["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"])
    assert back["by_int"] == {3: "c"} and back["pair"] == (1, "x") and back["none"] is None
    assert back["best"]["score"] == float("-inf") and back["history"] == state["history"]
    assert torch.equal(back["rng"], state["rng"]) and np.array_equal(back["ids"], np.arange(5))
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-3)
    fresh.load_state_dict(back["optimizer"])  # torch accepts what comes back
    assert fresh.state_dict()["param_groups"][0]["betas"] == (0.9, 0.98)


def test_a_pickle_is_refused_and_the_old_format_is_converted_once(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this ran",))

    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ProdlensError, match="cannot read"):
        load_state(tmp_path / "evil.safetensors")
    _, _, state = _state()
    run = tmp_path / "run"
    run.mkdir()
    legacy = {k: v for k, v in state.items() if k != "ids"}
    torch.save(legacy, run / "best.pt")
    with pytest.raises(ProdlensError, match="prodlens model convert"):
        resolve_checkpoint(run)
    assert convert_legacy(run) == [run / "best.safetensors"]
    assert load_state(run / "best.safetensors")["step"] == 7
    torch.save({"model": Payload()}, run / "last.pt")  # an object the restricted loader will not build
    with pytest.raises(ProdlensError, match="restricted loader refused"):
        convert_legacy(run / "last.pt")
