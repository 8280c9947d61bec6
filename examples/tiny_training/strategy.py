"""Trains a one-hidden-layer network (tanh, softmax output) with full-batch gradient descent.

data/public/train.csv: columns x0..x5 and label (0, 1 or 2). solve() trains deterministically
and returns the preprocessing and the learned parameters as nested lists; the evaluator computes
the cross-entropy on a validation split it keeps private.
"""

import numpy as np

LEARNING_RATE = 0.04
EPOCHS = 60  # full-batch gradient steps
HIDDEN = 4  # hidden units
L2 = 0.01  # weight decay
INIT_SCALE = 0.5  # standard deviation of the initial weights
MOMENTUM = 0.5
STANDARDIZE = False  # centre and scale each feature with the training mean and std
ADD_SQUARES = False  # also feed the squares of the (standardised) features
INPUTS = ["x0", "x1", "x2", "x3", "x4", "x5"]  # the raw columns the network may use
SEED = 0
CLASSES = 3  # swarm: fixed
COLUMNS = ["x0", "x1", "x2", "x3", "x4", "x5"]  # swarm: fixed


def load(public_dir):
    data = np.loadtxt(f"{public_dir}/train.csv", delimiter=",", skiprows=1)  # swarm: fixed
    return data[:, :-1], data[:, -1].astype(int)  # swarm: fixed


def inputs(x, mean, scale):
    z = (x - mean) / scale  # swarm: fixed
    return np.hstack([z, z**2]) if ADD_SQUARES else z  # swarm: fixed


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))  # swarm: fixed
    return shifted / shifted.sum(axis=1, keepdims=True)  # swarm: fixed


def solve(public_dir):
    x, y = load(public_dir)
    mean = x.mean(axis=0) if STANDARDIZE else np.zeros(x.shape[1])  # swarm: fixed
    scale = x.std(axis=0) if STANDARDIZE else np.ones(x.shape[1])  # swarm: fixed
    z = inputs(x, mean, scale)
    used = [name in INPUTS for name in COLUMNS] * (z.shape[1] // len(COLUMNS))  # swarm: fixed
    mask = np.array(used, dtype=float)[:, None]  # an unused input keeps zero weights
    rng = np.random.default_rng(SEED)
    w1 = rng.standard_normal((z.shape[1], HIDDEN)) * INIT_SCALE * mask  # swarm: fixed
    b1 = np.zeros(HIDDEN)
    w2 = rng.standard_normal((HIDDEN, CLASSES)) * INIT_SCALE  # swarm: fixed
    b2 = np.zeros(CLASSES)
    onehot = np.eye(CLASSES)[y]
    params = [w1, b1, w2, b2]  # swarm: fixed
    velocity = [np.zeros_like(p) for p in params]  # swarm: fixed
    for _ in range(EPOCHS):
        h = np.tanh(z @ w1 + b1)  # swarm: fixed
        error = (softmax(h @ w2 + b2) - onehot) / len(y)  # swarm: fixed
        back = (error @ w2.T) * (1 - h * h)  # swarm: fixed
        grads = [(z.T @ back + L2 * w1) * mask, back.sum(axis=0),  # swarm: fixed
                 h.T @ error + L2 * w2, error.sum(axis=0)]  # swarm: fixed
        for param, grad, vel in zip(params, grads, velocity, strict=True):  # swarm: fixed
            vel *= MOMENTUM
            vel -= LEARNING_RATE * grad
            param += vel
    return {  # swarm: fixed
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "squares": ADD_SQUARES,
        "w1": w1.tolist(),
        "b1": b1.tolist(),
        "w2": w2.tolist(),
        "b2": b2.tolist(),
    }
