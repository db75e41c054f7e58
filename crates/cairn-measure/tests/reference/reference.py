"""Reference values for cairn-measure's statistics tests, computed by standard packages.

Run: python3 reference.py  (after `pip install scipy statsmodels scikit-learn lifelines numpy`)
The versions used for the values in ../statistics.rs are printed first. Each block prints
the inputs and the package's results with full precision; the Rust tests copy them.
"""

import os

import lifelines
import numpy as np
import pandas as pd
import scipy
import sklearn
import statsmodels
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from scipy.stats import chisquare, fisher_exact
from scipy.stats import norm
from sklearn.metrics import matthews_corrcoef, roc_auc_score
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, proportions_ztest

print(f"scipy {scipy.__version__}, statsmodels {statsmodels.__version__}, "
      f"scikit-learn {sklearn.__version__}, lifelines {lifelines.__version__}, numpy {np.__version__}")

print("\n# two-proportion z-test: arm a (control) xa/na, arm b xb/nb; b - a")
for xa, na, xb, nb in [(100, 1000, 130, 1000), (4400, 50000, 4600, 50000), (45, 300, 30, 320)]:
    z, p = proportions_ztest([xb, xa], [nb, na])
    low, high = confint_proportions_2indep(xb, nb, xa, na, method="wald", compare="diff")
    print(f"({xa}, {na}, {xb}, {nb}) z={z!r} p={p!r} wald95=({low!r}, {high!r})")

print("\n# Fisher's exact test, two-sided, table [[xa, na-xa], [xb, nb-xb]]")
for xa, na, xb, nb in [(3, 4, 1, 4), (3, 12, 9, 11), (0, 10, 5, 10), (1, 20, 1, 20), (12, 100, 25, 100), (2, 40, 9, 41)]:
    _, p = fisher_exact([[xa, na - xa], [xb, nb - xb]], alternative="two-sided")
    print(f"({xa}, {na}, {xb}, {nb}) p={p!r}")

print("\n# Wilson 95% interval")
for x, n in [(0, 10), (10, 10), (7, 50), (130, 1000), (1, 3)]:
    low, high = proportion_confint(x, n, alpha=0.05, method="wilson")
    print(f"({x}, {n}) ({low!r}, {high!r})")

print("\n# chi-square goodness of fit (sample ratio mismatch)")
for obs, shares in [([5120, 4880], [1, 1]), ([10300, 9700], [1, 1]), ([2600, 2450, 4950], [1, 1, 2]), ([8950, 1050], [0.9, 0.1])]:
    total = sum(obs)
    exp = [total * s / sum(shares) for s in shares]
    stat, p = chisquare(obs, f_exp=exp)
    print(f"{obs} {shares} chi2={stat!r} p={p!r}")

print("\n# Benjamini-Hochberg on the 15 p-values of Benjamini & Hochberg (1995), section 4.2")
bh = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.000]
reject, adjusted, _, _ = multipletests(bh, alpha=0.05, method="fdr_bh")
print(f"reject at 0.05: {int(reject.sum())}")
print("adjusted:", [float(a) for a in adjusted])

print("\n# sample size per arm, Fleiss without continuity correction, alpha 0.05 two-sided, power 0.8")
for p1, mde in [(0.10, 0.05), (0.30, 0.02), (0.5, -0.1)]:
    p2 = p1 + mde
    pbar = (p1 + p2) / 2
    za, zb = norm.ppf(1 - 0.05 / 2), norm.ppf(0.8)
    n = (za * np.sqrt(2 * pbar * (1 - pbar)) + zb * np.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / mde ** 2
    print(f"({p1}, {mde}) n={n!r} -> {int(np.ceil(n))}")

print("\n# Kaplan-Meier and log-rank on R's lung data as shipped by lifelines (lifelines/datasets/lung.csv)")
lung = pd.read_csv(os.path.join(os.path.dirname(__file__), "..", "fixtures", "lung.csv"))
kmf = KaplanMeierFitter().fit(lung["time"], lung["status"])
print(f"median={kmf.median_survival_time_!r}")
for t in [5, 11, 100, 200, 310, 500, 765, 1022]:
    s = float(kmf.survival_function_at_times(t).iloc[0])
    # lifelines keeps Greenwood's sum  sum d / (n (n - d))  as _cumulative_sq_.
    sq = float(kmf._cumulative_sq_[kmf._cumulative_sq_.index <= t].iloc[-1])
    print(f"t={t} S={s!r} greenwood_var={s * s * sq!r}")
for sex in (1, 2):
    g = lung[lung["sex"] == sex]
    print(f"sex={sex} median={KaplanMeierFitter().fit(g['time'], g['status']).median_survival_time_!r}")
m, f = lung[lung["sex"] == 1], lung[lung["sex"] == 2]
lr = logrank_test(m["time"], f["time"], m["status"], f["status"])
print(f"logrank chi2={lr.test_statistic!r} p={lr.p_value!r}")

print("\n# ROC AUC (scikit-learn roc_auc_score), ties included")
scores = [0.9, 0.8, 0.8, 0.7, 0.6, 0.6, 0.6, 0.4, 0.3, 0.3, 0.2, 0.1]
labels = [1, 1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0]
print(f"scores={scores} labels={labels} auc={roc_auc_score(labels, scores)!r}")
scores2 = [50, 50, 50, 50]
labels2 = [1, 0, 1, 0]
print(f"scores={scores2} labels={labels2} auc={roc_auc_score(labels2, scores2)!r}")

print("\n# phi = Matthews correlation (scikit-learn matthews_corrcoef)")
for a, b, c, d in [(40, 10, 20, 30), (5, 45, 30, 20)]:
    y_behaviour = [1] * (a + b) + [0] * (c + d)
    y_outcome = [1] * a + [0] * b + [1] * c + [0] * d
    print(f"({a}, {b}, {c}, {d}) phi={matthews_corrcoef(y_outcome, y_behaviour)!r}")

print("\n# quantiles, numpy.percentile (linear = type 7)")
ttv = [3, 14, 5, 30, 8, 21, 2, 9, 60, 11]
print(f"{ttv} median={np.percentile(ttv, 50)!r} p75={np.percentile(ttv, 75)!r} p90={np.percentile(ttv, 90)!r}")
