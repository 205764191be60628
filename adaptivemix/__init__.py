"""AdaptiveMix reproducibility harness.

The library behind the Snakemake workflow: AdaptiveMix itself (Liu et al., CVPR 2023,
arXiv 2303.01559), the GAN trainer with its method plugins, datasets, architectures,
metrics and reporting. Competing methods live in the top-level ``baselines`` package.
"""

__version__ = "0.1.0"
