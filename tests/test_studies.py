"""The studies beside the package (studies/): their scripts still compile against the package, and the two
pieces of code the small-compute study kept there (the projected discriminator, the mode-seeking penalty)
still do what they say. The studies are not part of the package; these are smoke tests only."""
import py_compile
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "small_compute"
sys.path.insert(0, str(STUDY))


@pytest.mark.parametrize("script", sorted(p.name for p in STUDY.glob("*.py")))
def test_study_scripts_compile(script):
    py_compile.compile(str(STUDY / script), doraise=True, cfile=None)


def test_mode_seeking_penalty_formula():
    from mode_seeking import mode_seeking_penalty

    z = torch.zeros(4, 3)
    z[2:] = 2.0  # |z1 - z2| = 2 per coordinate
    img = torch.zeros(4, 1, 2, 2)
    img[2:] = 0.5  # |G(z1) - G(z2)| = 0.5 per pixel: ratio 0.25
    torch.testing.assert_close(mode_seeking_penalty(img, z), torch.full((2,), 1 / (0.25 + 1e-5)))
    same = mode_seeking_penalty(torch.ones(4, 1, 2, 2), z)
    assert torch.all(same > 9e4)  # different latents, one image: the largest penalty


def test_projected_discriminator_trains_only_its_heads_and_reloads():
    from projected import ProjectedDiscriminator

    torch.manual_seed(0)
    D = ProjectedDiscriminator(c_dim=10, resolution=32, img_channels=1, channels=16, stand_in=True)
    trunk = D._trunk[0]
    assert not any(p.requires_grad for p in trunk.parameters())
    assert not any(n.startswith("_trunk") for n in D.state_dict())  # the frozen trunk is not saved
    x = torch.randn(4, 1, 32, 32, requires_grad=True)
    c = torch.nn.functional.one_hot(torch.arange(4), 10).float()
    out = D(x, c)
    assert out.shape == (4, 1)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # G receives a gradient through the frozen features
    assert all(p.grad is not None for p in D.heads.parameters())
    with pytest.raises(ValueError, match="conditional"):
        D(x.detach())
    torch.manual_seed(1)
    E = ProjectedDiscriminator(c_dim=10, resolution=32, img_channels=1, channels=16, stand_in=True)
    E._trunk = D._trunk  # the same frozen features (the real one is loaded from the LPIPS weights)
    E.load_state_dict(D.state_dict())
    D.eval(), E.eval()
    torch.testing.assert_close(E(x.detach(), c), D(x.detach(), c))
