"""Names of files in a finished run's folder that both the jobs writing them and the reports
reading them use: here, with no imports, so that reports never import the training code."""

#: The final D's features of the shrinkage probe's reals and fakes, and their scalars.
D_FEATURES_FILE = "d_features.npz"
