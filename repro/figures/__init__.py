"""The paper's figures (Figs. 2-8), each backed by a measured number.

- `memorisation`: Figs. 2/3, nearest-training-image distances of samples vs held-out images.
- `walk`: Fig. 4 latent walks and their smoothness (largest / median consecutive step).
- `guided`: Fig. 5 guided backpropagation of D's last-layer features; saliency mass on objects.
- `windows`, `annotate`: Fig. 6 window removal; the annotation path of the `paper` profile.
- `arithmetic`: Figs. 7/8 vector arithmetic and the turn vector, checked by an attribute classifier.
- `nets`: the small window segmenter and attribute classifier trained on real labelled images.
- `config`: the typed `figures` section. The stage is `repro.stages.figures`.
"""
