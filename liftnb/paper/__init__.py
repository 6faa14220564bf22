"""The LIFT paper's experiments (Dinh et al., NeurIPS 2022), built on the liftnb library; the library never
imports this package.

One module per notebook's experiment, each holding its plan (and its run, for the pieces of 08-12):
classification (02), boundaries (03), regression (04), robustness (05), feature_names (06), pretraining (07),
half_image (08), two_stage (09), icl_calibration (10), own_data (11), imputation_study (12), and sweep (how the
defaults were chosen). Shared: runs (run description, cache key, execution with provenance, cached pieces), results
(results/ files, committed rows and staleness), figures (regions, curves), perturb (changes to training parts),
reported (the paper's numbers), reproduce (the command), prune (--prune-cache), demo (make demo)."""
