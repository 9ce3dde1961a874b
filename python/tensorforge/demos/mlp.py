"""Demo ``mlp``: a multi-layer perceptron on scikit-learn's breast-cancer data.

569 tumours, 30 features, malignant or benign. A stratified split into 64 %
training, 16 % validation and 20 % test; the features standardised with the
training part's mean and standard deviation; an MLP 30-64-32-2 with ReLU and
dropout, trained with AdamW (decoupled weight decay) by ``tfg.fit`` with
``EarlyStopping`` on the validation loss (best weights restored). Reports the
test accuracy, F1 and ROC-AUC.
"""
import numpy as np

import tensorforge as tfg
from tensorforge import nn

from ._common import Stopwatch, header, predict, require, stratified_split


def build_model(dropout=0.2):
    return nn.Sequential(
        nn.Linear(30, 64), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(64, 32), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(32, 2))


def main(fast=False, seed=0, output=None):
    datasets = require("sklearn.datasets", "scikit-learn", "mlp")
    bunch = datasets.load_breast_cancer()
    features = bunch.data.astype(np.float32)
    labels = (bunch.target == 0).astype(np.int64)   # 1 = malignant, the class to find
    rest, test = stratified_split(labels, 0.2, seed=seed)
    train_part, val_part = stratified_split(labels[rest], 0.2, seed=seed + 1)
    train, val = rest[train_part], rest[val_part]
    header("mlp", f"MLP on breast-cancer data: {len(train)} training, {len(val)} validation, "
                  f"{len(test)} test samples, 30 features (1 = malignant)")
    mean = features[train].mean(axis=0)
    std = features[train].std(axis=0)
    standardised = (features - mean) / std

    def tensors(index):
        return tfg.from_numpy(standardised[index]), tfg.from_numpy(labels[index])

    tfg.manual_seed(seed)
    x_train, y_train = tensors(train)
    x_val, y_val = tensors(val)
    x_test, y_test = tensors(test)
    loader = tfg.data.DataLoader(tfg.data.TensorDataset(x_train, y_train), batch_size=32,
                                 shuffle=True)
    val_loader = tfg.data.DataLoader(tfg.data.TensorDataset(x_val, y_val), batch_size=256)
    model = build_model()
    optimizer = tfg.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    stopper = tfg.EarlyStopping(monitor="val_loss", patience=8, restore_best_weights=True)
    clock = Stopwatch()
    history = tfg.fit(model, nn.CrossEntropyLoss(), optimizer, loader,
                      epochs=5 if fast else 150, val_loader=val_loader,
                      metrics=["accuracy", "f1_score"], callbacks=[stopper])
    seconds = clock()
    if stopper.stopped_epoch is not None:
        print(f"early stopping after epoch {stopper.stopped_epoch + 1}; restored the weights of "
              f"epoch {stopper.best_epoch + 1} (val_loss {stopper.best:.4f})")
    scores = predict(model, x_test)
    figures = {
        "accuracy": tfg.metrics.accuracy(y_test, scores),
        "f1": tfg.metrics.f1_score(y_test, scores),
        "roc_auc": tfg.metrics.roc_auc(y_test, scores),
        "epochs": history.epochs,
        "seconds": seconds,
    }
    print(f"training: {history.epochs} epochs in {seconds:.1f}s")
    print(f"test: accuracy {100 * figures['accuracy']:.2f} %, F1 {figures['f1']:.4f}, "
          f"ROC-AUC {figures['roc_auc']:.4f}")
    return figures
