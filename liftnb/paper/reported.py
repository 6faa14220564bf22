"""Numbers reported in the LIFT paper (Dinh et al., NeurIPS 2022), to print beside ours."""
from __future__ import annotations

import pandas as pd

# accuracy % on the tabular sets: MCC, LogReg, DT, RBF-SVM, XGB, LIFT/GPT-J, LIFT/GPT-3
_TABULAR_COLUMNS = ["majority", "logreg", "tree", "svm_rbf", "xgboost", "lift_gptj", "lift_gpt3"]
_TABULAR = {
    "customers": [68.18, 87.12, 85.98, 86.36, 85.23, 85.23, 84.85],
    "pollution": [50.00, 58.33, 77.78, 58.33, 63.89, 63.89, 63.89],
    "spambase": [60.59, 93.27, 90.70, 93.70, 95.87, 94.03, 94.90],
    "hill_valley": [49.79, 77.78, 56.38, 68.72, 59.26, 100.00, 99.73],
    "iris": [33.33, 96.67, 97.77, 100.0, 100.0, 96.67, 97.00],
    "tae": [35.48, 45.16, 65.59, 53.76, 66.67, 61.29, 65.59],
    "cmc": [42.71, 49.49, 56.72, 56.50, 52.43, 49.83, 57.74],
    "wine": [38.89, 100.0, 93.52, 100.0, 97.22, 93.52, 92.59],
    "vehicle": [25.88, 80.39, 63.92, 81.18, 73.14, 64.31, 70.20],
    "led": [11.00, 68.67, 66.33, 68.00, 66.00, 65.33, 69.33],
    "optdigits": [10.14, 96.53, 89.80, 97.95, 97.48, 98.22, 98.99],
    "mfeat": [10.00, 97.67, 87.67, 98.83, 96.75, 94.17, 93.08],
    "margin": [0.94, 81.35, 43.86, 81.98, 70.21, 50.23, 59.37],
    "texture": [0.94, 81.67, 46.88, 83.44, 70.73, 50.32, 67.50],
}
_SYNTHETIC = {  # LogReg, XGB, LIFT/GPT-J, LIFT/GPT-3
    "twocircles": {"logreg": 49.83, "xgboost": 79.25, "lift_gptj": 75.92, "lift_gpt3": 81.42},
    "blobs": {"logreg": 96.75, "xgboost": 96.17, "lift_gptj": 96.17, "lift_gpt3": 96.67},
    "moons": {"logreg": 88.58, "xgboost": 99.83, "lift_gptj": 99.58, "lift_gpt3": 100.00},
}
_IMAGE = {  # LogReg, DT, RBF-SVM, XGB, LIFT/GPT-J, LIFT/GPT-3
    "mnist": {"logreg": 91.95, "tree": 87.42, "svm_rbf": 97.70, "xgboost": 97.69, "lift_gptj": 97.01, "lift_gpt3": 98.15},
    "fmnist": {"logreg": 85.59, "tree": 80.52, "svm_rbf": 90.59, "xgboost": 90.19, "lift_gptj": 85.10,
               "lift_gpt3": 90.18},
}


def classification_accuracy() -> pd.DataFrame:
    """The paper's accuracy (%) per data set (rows) and method (columns); NaN where not reported."""
    rows = {name: dict(zip(_TABULAR_COLUMNS, values)) for name, values in _TABULAR.items()}
    rows.update(_SYNTHETIC)
    rows.update(_IMAGE)
    return pd.DataFrame.from_dict(rows, orient="index")


# RAE, p = 1: polynomial, kernel ridge, KNN, MLP, gradient boosting, random forest, GP, LIFT/GPT-3, LIFT/GPT-J
_REGRESSION_COLUMNS = ["polynomial", "kernel_ridge", "knn", "mlp", "gradient_boosting", "random_forest",
                       "gaussian_process", "lift_gpt3", "lift_gptj"]
_REGRESSION_P1 = {
    "linear": [.010, .047, .041, .035, .050, .045, .008, .064, .081],
    "quadratic": [.008, .053, .049, .035, .057, .054, .011, .132, .111],
    "exponential": [.038, .068, .052, .020, .048, .039, .013, .093, .109],
    "cosine": [1.052, .121, .136, .379, .148, .354, .035, .436, .385],
    "l1norm": [.229, .059, .045, .028, .060, .061, .029, .089, .100],
    "piecewise": [.451, .166, .078, .085, .062, .067, .102, .167, .146],
}
FEATURE_NAMES_GPT3 = pd.DataFrame(  # accuracy %, GPT-3: no names / shuffled names / correct names
    {"no_names": [57.74, 65.59, 70.20], "shuffled": [56.27, 60.22, 70.20], "names": [57.40, 69.89, 75.29]},
    index=["cmc", "tae", "vehicle"])
PRETRAINING_AVERAGE = {"majority": 37.73, "GPT-3": 86.97, "GPT-J": 85.47, "random-init GPT-J": 31.61,
                       "gibberish-pretrained GPT-J": 80.65, "CodeGen": 54.12, "CodeParrot": 50.65}


def regression_rae() -> pd.DataFrame:
    """The paper's RAE (outlier-filtered) for p = 1 per function (rows) and method (columns)."""
    return pd.DataFrame.from_dict(_REGRESSION_P1, orient="index", columns=_REGRESSION_COLUMNS)
