"""The ``.npz`` layout of features files (:mod:`ufm.features`), apart so that ``ufm --help``
prints it without importing numpy."""

LAYOUT = """\
============  ===========  ==========================================================
key           shape        meaning
============  ===========  ==========================================================
``H``         (d, N)       last-layer features, one *column* per sample (float)
``Y``         (K, N)       0/1 label indicators, one column per sample; every sample
                           needs at least one label (PAL is undefined otherwise)
``W``         (K, d)       last-layer classifier, one row per class
``b``         (K,)         optional bias; absent means a model without bias (b = 0)
``lam_W``,    ()           optional scalars: the weight decays, used for the objective
``lam_H``,                 and the certificate when no ``--lam-*`` flag is given
``lam_b``
============  ===========  ==========================================================
"""
