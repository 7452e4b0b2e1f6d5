"""A real network, end to end: multi-label digits, a small MLP trained with the PAL loss,
and its last layer compared with the UFM optimum.

- :mod:`ufm.networks.data` -- the multi-label data set from scikit-learn's bundled digits;
- :mod:`ufm.networks.mlp` -- the MLP and its minibatch objective (JAX, float64; loaded only
  when a network is trained);
- :mod:`ufm.networks.train` -- :func:`network`, the method ``ufm.solve(problem, "network")``;
- :mod:`ufm.networks.export` -- ``ufm train``'s files: ``epoch_NNN.npz`` and ``summary.json``.

Needs the extra ``ufm[nn]`` (JAX, optax, scikit-learn); ``import ufm`` loads none of them.
"""

from .train import network

__all__ = ["network"]
