"""First-order meta-learning over users (Reptile: Nichol, Achiam, Schulman, "On First-Order
Meta-Learning Algorithms", arXiv 1803.02999, 2018, Algorithm 1), shared by MetaBert4Rec and
CLOVER: the meta-learned initialization their per-user adaptation starts from."""

from __future__ import annotations

import numpy as np


def user_tasks(windows, extra=None, min_windows=2) -> list:
    """One meta-learning task per user of ``windows``: ``(features, labels)`` numpy arrays of
    the user's rows (``extra``: name -> array [n] of per-row inputs added to the features);
    users with fewer than ``min_windows`` rows are left out."""
    users = np.asarray(windows.user).astype(str)
    features = {**windows.features(), **(extra or {})}
    tasks = []
    for user in np.unique(users):
        index = np.flatnonzero(users == user)
        if index.size >= min_windows:
            tasks.append(({k: v[index] for k, v in features.items()}, windows.label[index]))
    return tasks


def reptile(step, variables, tasks, iterations, inner_steps, step_size, batch_size, seed,
            pass_iterations=None, after_pass=None) -> list:
    """Reptile: for each of ``iterations`` iterations, one task T drawn at random, ``inner_steps``
    optimizer steps ``step(features, labels, weight) -> loss`` from the current weights theta
    on batches of T (``batch_size`` rows drawn from T, with replacement when T is smaller)
    to phi, then ``theta <- theta + epsilon_t (phi - theta)`` with epsilon_t annealed linearly
    from ``step_size`` to 0 (Reptile's outer step; first order: no second derivatives).

    Args:
        step: callable. One inner optimizer step (e.g. SGD) on ``variables``.
        variables: list of tf.Variable. theta.
        tasks: list of ``(features, labels)`` (:func:`user_tasks`).
        iterations, inner_steps: int.
        step_size: float. epsilon.
        batch_size: int. Rows per inner step.
        seed: int.
        pass_iterations: int or None. Iterations per pass over the tasks' windows: after each
            pass ``after_pass(pass number, from 1)`` is called, and a True return stops
            the meta-learning there (early stopping; epsilon's schedule stays the one of
            ``iterations``).
        after_pass: callable or None.

    Returns:
        list of float: each iteration's mean inner loss.
    """
    rng = np.random.default_rng(seed)
    weight = np.ones(batch_size, np.float32)
    losses = []
    for iteration in range(int(iterations)):
        features, labels = tasks[int(rng.integers(len(tasks)))]
        theta = [v.numpy() for v in variables]
        inner = []
        for _ in range(int(inner_steps)):
            index = rng.choice(len(labels), batch_size, replace=len(labels) < batch_size)
            inner.append(float(step({k: v[index] for k, v in features.items()}, labels[index], weight)))
        epsilon = step_size * (1.0 - iteration / iterations)
        for variable, start in zip(variables, theta):
            variable.assign(start + epsilon * (variable.numpy() - start))
        losses.append(float(np.mean(inner)) if inner else float("nan"))
        done = iteration + 1
        if after_pass is not None and (done % pass_iterations == 0 or done == iterations):
            if after_pass(-(-done // pass_iterations)):
                break
    return losses


def meta_iterations(n_windows, epochs, inner_steps, batch_size) -> int:
    """Iterations for ``epochs`` passes of inner steps over ``n_windows`` (at least 1)."""
    return max(1, int(round(epochs * n_windows / max(1, inner_steps * batch_size))))
