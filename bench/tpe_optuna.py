#!/usr/bin/env python3
"""Optuna's TPESampler on the functions and budgets of bench/tpe_bench.cpp, through the ask/tell
API, with the same CSV (function,method,seed,trial,value,best_so_far,propose_ms), so that
bench/tpe_summary.py puts both side by side. bench/tpe.sh runs all three.

  tpe_optuna.py [--seeds 30] [--trials 100] [--functions branin,...]
                [--methods optuna_tpe,optuna_tpe_mv,optuna_tpe_v5,optuna_tpe_v5_uni] [--out FILE]
  tpe_optuna.py --timing [--history 1000] [--repeats 20] [--out FILE]

Methods: optuna_tpe is TPESampler(seed=s) with the installed version's defaults (Optuna 3.1:
univariate); optuna_tpe_mv adds multivariate=True, which Optuna 5 makes the default (its other new
default, constant_liar, changes nothing when trials run one after another). Not run by default:
optuna_tpe_v5 and optuna_tpe_v5_uni, Optuna 3.1 patched to compute what Optuna 5 computes (see
PATCHED): the references for our tpe and tpe_uni (bench/tpe.sh runs all four). propose_ms is
study.ask() plus the suggest_* calls (where a univariate TPE samples), not the objective or tell.

--timing: the same with 1,000 finished trials of random Hartmann-6 points in the study, as lines
timing,method,history,proposals,median_ms,p90_ms.
"""
import argparse
import math
import random
import sys
import time
import warnings

try:
    import optuna
except ImportError:
    sys.exit("tpe_optuna.py: Optuna is missing (apt-get install python3-optuna)")

METHODS = {
    "optuna_tpe": {},
    "optuna_tpe_mv": {"multivariate": True},
    "optuna_tpe_v5": {"multivariate": True},
    "optuna_tpe_v5_uni": {},
}
# Methods run by default; the _v5 ones are the like-for-like references (see PATCHED).
DEFAULT_METHODS = ["optuna_tpe", "optuna_tpe_mv"]


def _v5_numerical_params(self, observations, param_name):
    """Optuna 5's kernel centres and bandwidths for one numerical parameter in place of 3.1's
    _ParzenEstimator._calculate_numerical_params: each bandwidth the larger gap to its sorted
    neighbours, the prior's centre not among them, the outermost observations seeing only their
    inner neighbour, also when multivariate (3.1: Scott's 0.2 n^(-1/(d+4)) range for all); then
    the magic clip and the prior kernel last, as in 3.1."""
    import numpy as np

    low = self._low[param_name]
    high = self._high[param_name]
    n = self._n_observations
    mus = np.append(observations, 0.5 * (low + high))
    sigmas = np.empty(n + 1)
    if n == 1:
        sigmas[0] = max(observations[0] - low, high - observations[0])
    elif n >= 2:
        order = np.argsort(observations)
        ends = np.concatenate([[low], observations[order], [high]])
        gaps = np.maximum(ends[1:-1] - ends[:-2], ends[2:] - ends[1:-1])
        gaps[0] = ends[2] - ends[1]
        gaps[-1] = ends[-2] - ends[-3]
        sigmas[order] = gaps
    sigmas[:n] = np.clip(sigmas[:n], (high - low) / min(100.0, n + 2.0), high - low)
    sigmas[n] = high - low
    return mus, sigmas


def _fixed_logpdf(x, a, b, loc=0, scale=1):
    """3.1's _truncnorm.logpdf without its bug: the density of the scaled variable lacks
    -log(scale), so wide kernels weigh too much in log l(x) - log g(x) (optuna/optuna#5109, fixed
    in 3.5 by #5110)."""
    import numpy as np

    return _fixed_logpdf.original(x, a, b, loc, scale) - np.log(scale)


# The _v5 methods: Optuna 3.1's TPE with what Optuna 5 computes differently on these spaces
# patched in (the bandwidths above and the logpdf fix), i.e. the algorithm of our tpe / tpe_uni
# (sweep/tpe.hpp) in Optuna's own code: the like-for-like reference. optuna_tpe and optuna_tpe_mv
# are Optuna 3.1 as installed.
PATCHED = {"optuna_tpe_v5", "optuna_tpe_v5_uni"}


def _patch(v5):
    from optuna.samplers._tpe import _truncnorm
    from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator

    if not hasattr(_ParzenEstimator, "_v3_numerical_params"):
        _ParzenEstimator._v3_numerical_params = _ParzenEstimator._calculate_numerical_params
        _fixed_logpdf.original = _truncnorm.logpdf
    _ParzenEstimator._calculate_numerical_params = (_v5_numerical_params if v5 else
                                                    _ParzenEstimator._v3_numerical_params)
    _truncnorm.logpdf = _fixed_logpdf if v5 else _fixed_logpdf.original


def branin(x1, x2):
    b = 5.1 / (4 * math.pi**2)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


ALPHA = [1.0, 1.2, 3.0, 3.2]
A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
     [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]


def hartmann6(x):
    total = 0.0
    for i in range(4):
        inner = sum(A[i][j] * (x[j] - 1e-4 * P[i][j]) ** 2 for j in range(6))
        total += ALPHA[i] * math.exp(-inner)
    return -total


# Each function suggests its parameters from a trial (so the suggest calls are part of the timed
# proposal) and returns the objective. Keep in step with problems() in bench/tpe_bench.cpp.
def f_branin(trial):
    x1 = trial.suggest_float("x1", -5, 10)
    x2 = trial.suggest_float("x2", 0, 15)
    return lambda: branin(x1, x2)


def f_hartmann6(trial):
    x = [trial.suggest_float(f"x{i}", 0, 1) for i in range(1, 7)]
    return lambda: hartmann6(x)


def f_branin_log(trial):
    x1 = trial.suggest_float("x1", -5, 10)
    u = trial.suggest_float("u", 1e-3, 1, log=True)
    return lambda: branin(x1, 5 * (math.log10(u) + 3))


def f_hartmann6_mixed(trial):
    k1 = trial.suggest_int("k1", 0, 20)
    x2 = trial.suggest_categorical("x2", [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    rest = [trial.suggest_float(f"x{i}", 0, 1) for i in range(3, 7)]
    return lambda: hartmann6([k1 / 20, x2] + rest)


FUNCTIONS = {
    "branin": f_branin,
    "hartmann6": f_hartmann6,
    "branin_log": f_branin_log,
    "hartmann6_mixed": f_hartmann6_mixed,
}


def sampler(method, seed):
    # One study at a time in this process, so patching the modules per study is enough.
    _patch(method in PATCHED)
    return optuna.samplers.TPESampler(seed=seed, **METHODS[method])


def optimise(name, method, seed, trials, out):
    study = optuna.create_study(sampler=sampler(method, seed))
    best = math.inf
    for t in range(trials):
        t0 = time.perf_counter()
        trial = study.ask()
        objective = FUNCTIONS[name](trial)
        propose_ms = (time.perf_counter() - t0) * 1e3
        value = objective()
        study.tell(trial, value)
        best = min(best, value)
        out.write(f"{name},{method},{seed},{t},{value!r},{best!r},{propose_ms:.6f}\n")


def quantile(values, q):
    v = sorted(values)
    pos = q * (len(v) - 1)
    i = int(pos)
    if i + 1 >= len(v):
        return v[-1]
    return v[i] + (pos - i) * (v[i + 1] - v[i])


def timing(history, repeats, methods, out):
    rng = random.Random(12345)
    dists = {f"x{i}": optuna.distributions.FloatDistribution(0, 1) for i in range(1, 7)}
    finished = []
    for _ in range(history):
        params = {k: rng.random() for k in dists}
        finished.append(optuna.trial.create_trial(params=params, distributions=dists,
                                                  value=hartmann6([params[f"x{i}"] for i in range(1, 7)])))
    for method in methods:
        study = optuna.create_study(sampler=sampler(method, 777))
        study.add_trials(finished)
        ms = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            trial = study.ask()
            f_hartmann6(trial)
            ms.append((time.perf_counter() - t0) * 1e3)
            # Failed trials are not part of TPE's history, so every ask sees the same 1,000.
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        out.write(f"timing,{method},{history},{repeats},{quantile(ms, 0.5):.4f},{quantile(ms, 0.9):.4f}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--functions", default=",".join(FUNCTIONS))
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--out")
    parser.add_argument("--timing", action="store_true")
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    functions = args.functions.split(",")
    methods = args.methods.split(",")
    for name in functions:
        if name not in FUNCTIONS:
            parser.error(f"unknown function {name} ({', '.join(FUNCTIONS)})")
    for method in methods:
        if method not in METHODS:
            parser.error(f"unknown method {method} ({', '.join(METHODS)})")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # multivariate is experimental in Optuna 3.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    out = open(args.out, "w") if args.out else sys.stdout
    if args.timing:
        timing(args.history, args.repeats, methods, out)
    else:
        out.write("function,method,seed,trial,value,best_so_far,propose_ms\n")
        for name in functions:
            for method in methods:
                for seed in range(args.seeds):
                    optimise(name, method, seed, args.trials, out)
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
