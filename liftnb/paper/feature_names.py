"""Notebook 06: no names vs shuffled names vs correct names vs a natural sentence."""
from __future__ import annotations

from . import classification
from .runs import Run, runs_for

# Natural sentences for the feature-names ablation (the paper wrote dataset-specific sentences for TAE, CMC, Vehicle;
# it did not publish them, so these are ours, with the UCI codebook's meanings).
SENTENCES = {
    "iris": "An iris flower has sepals {sepal length} cm long and {sepal width} cm wide, and petals "
            "{petal length} cm long and {petal width} cm wide. Which species is it?",
    "tae": "A teaching assistant (native English speaker: {Whether_of_not_the_TA_is_a_native_English_speaker}, "
           "1 yes, 2 no) taught course {Course} of instructor {Course_instructor} in semester type "
           "{Summer_or_regular_semester} (1 summer, 2 regular) to {Class_size} students. How was the TA rated?",
    # UCI codes: education and standard of living 1 low .. 4 high; religion 1 Islam; working and media 0 yes/good
    "cmc": "A {Wifes_age}-year-old wife (education {Wifes_education} of 4, religion {Wifes_religion} with 1 Islam, "
           "working {Wifes_now_working?} with 0 yes) and her husband (education {Husbands_education} of 4, "
           "occupation group {Husbands_occupation}) have {Number_of_children_ever_born} children, standard of "
           "living {Standard-of-living_index} of 4 and media exposure {Media_exposure} (0 good). Which contraceptive "
           "method do they use?",
    "vehicle": "A vehicle's side silhouette has compactness {COMPACTNESS}, circularity {CIRCULARITY}, distance "
               "circularity {DISTANCE CIRCULARITY}, radius ratio {RADIUS RATIO}, aspect ratios {PR.AXIS ASPECT RATIO} "
               "(principal axis) and {MAX.LENGTH ASPECT RATIO} (maximum length), scatter ratio {SCATTER RATIO}, "
               "elongatedness {ELONGATEDNESS}, rectangularities {PR.AXIS RECTANGULARITY} and "
               "{MAX.LENGTH RECTANGULARITY}, scaled variances {SCALED VARIANCE_MAJOR} (major axis) and "
               "{SCALED VARIANCE_MINOR} (minor axis), radius of gyration {SCALED RADIUS OF GYRATION}, skewness "
               "{SKEWNESS ABOUT_MAJOR} and {SKEWNESS ABOUT_MINOR}, kurtosis {KURTOSIS ABOUT_MAJOR} and "
               "{KURTOSIS ABOUT_MINOR}, hollows ratio {HOLLOWS RATIO}. Is it a bus, an Opel, a Saab or a van?",
}


# With names, CMC's rows take 123 tokens and Vehicle's 245: on all rows the four templates would cost 1-2 h a data set
# and seed on 2 cores, so the ablation runs on a stratified subsample of each (the same rows for every template).
ROWS = {"cmc": 500, "vehicle": 300}


def plan(profile: str = "quick") -> list[Run]:
    """No names vs shuffled names vs correct names vs a sentence (notebook 06)."""
    quick = profile == "quick"
    sets = ["tae"] if quick else ["iris", "tae", "cmc", "vehicle", "wine"]
    table = {}
    for name in sets:
        rows = None if quick else ROWS.get(name)
        table[(name, "no_names")] = classification.as_in_table(name, profile) if rows is None else {"rows": rows}  # else notebook 02's run
        # quick (CI): notebook 02's no-names run alone (the asserted one); names (4 min of CI time on a CPU without
        # native bf16, not asserted) and shuffled names run in the full profile
        for style in (() if quick else ("shuffled", "names")):
            table[(name, style)] = {"rows": rows, "style": style, "baselines": ()}
        if name in SENTENCES and not quick:  # quick (CI): the three templates the paper's table compares
            table[(name, "sentence")] = {"rows": rows, "style": "custom", "baselines": (),
                                         "template": {"format": SENTENCES[name], "question": ""}}
    return runs_for("feature_names", profile, table)

