"""The plain reference a researcher would write: the PyTorch DCGAN tutorial's training loop.

Same architecture (the registry's G and D), same losses and optimiser settings as GANTrainer
(both D and G updated on every minibatch), written the tutorial way: a `Dataset` whose
`__getitem__` converts one uint8 image to a normalised float tensor, a shuffling
`DataLoader` (`drop_last=True`; `num_workers` as given: the tutorial uses 2, on a 2-core CPU
0 is the faster choice and what we time there), D's real and fake halves backpropagated
separately, and every step's losses and D outputs read back with `.item()` into Python lists.
No tricks either way: this is the loop as commonly written, not a straw man.
"""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from repro.registry import MODELS


class ImageDataset(Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, pixel_range: str):
        self.images, self.labels, self.pixel_range = images, labels, pixel_range

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        x = self.images[i].float()  # (C, H, W)
        x = x / 127.5 - 1.0 if self.pixel_range == "tanh" else x / 255.0
        y = self.labels[i] if self.labels is not None else 0
        return x, y


def reference_loop(variant_name: str, images: torch.Tensor, labels: torch.Tensor | None,
                   device: torch.device, batch_size: int, steps: int, warmup: int,
                   lr: float = 0.0002, beta1: float = 0.5, num_workers: int = 0,
                   seed: int = 0) -> dict:
    """Train `warmup + steps` steps; returns images/s over the last `steps` and the loss lists."""
    torch.manual_seed(seed)
    variant = MODELS.get(variant_name)
    spec = variant.spec
    netG = variant.build_generator().to(device)
    netD = variant.build_discriminator().to(device)
    criterion = nn.BCEWithLogitsLoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=lr, betas=(beta1, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=lr, betas=(beta1, 0.999))
    dataset = ImageDataset(images, labels if spec.n_classes else None, spec.pixel_range)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                        num_workers=num_workers, pin_memory=device.type == "cuda")
    G_losses, D_losses, D_x_list = [], [], []
    real_label, fake_label = 1.0, 0.0
    iters, t_start = 0, None
    while iters < warmup + steps:
        for real_cpu, y in loader:
            if iters == warmup:
                t_start = time.perf_counter()  # the previous step's .item() drained the device
            real = real_cpu.to(device)
            y = y.to(device) if spec.n_classes else None
            b = real.size(0)
            # (1) Update D: maximise log(D(x)) + log(1 - D(G(z)))
            netD.zero_grad()
            label = torch.full((b,), real_label, dtype=torch.float, device=device)
            output = netD(real, y).view(-1)
            errD_real = criterion(output, label)
            errD_real.backward()
            D_x = output.sigmoid().mean().item()
            noise = variant.sample_z(b, device=device)
            y_fake = torch.randint(0, spec.n_classes, (b,), device=device) if spec.n_classes else None
            fake = netG(noise, y_fake)
            label.fill_(fake_label)
            output = netD(fake.detach(), y_fake).view(-1)
            errD_fake = criterion(output, label)
            errD_fake.backward()
            D_G_z1 = output.sigmoid().mean().item()
            errD = errD_real + errD_fake
            optimizerD.step()
            # (2) Update G: maximise log(D(G(z)))
            netG.zero_grad()
            label.fill_(real_label)
            output = netD(fake, y_fake).view(-1)
            errG = criterion(output, label)
            errG.backward()
            D_G_z2 = output.sigmoid().mean().item()
            optimizerG.step()
            G_losses.append(errG.item())
            D_losses.append(errD.item())
            D_x_list.append((D_x, D_G_z1, D_G_z2))
            iters += 1
            if iters >= warmup + steps:
                break
    seconds = time.perf_counter() - t_start
    return {"images_per_second": steps * batch_size / seconds, "seconds": seconds,
            "final_loss_d": D_losses[-1], "final_loss_g": G_losses[-1]}
