"""Demo ``detect``: detection post-processing with ``tfg.ops.batched_nms``.

A synthetic detector's raw output on a 640x480 image: around each true object
a cluster of jittered boxes (score lower the further a box is off), for some
objects a weaker box of a wrong class at the same place, and scattered
low-score false alarms. Per-class non-maximum suppression (IoU > 0.5) keeps
one box per cluster; the demo shows what it removed and why (the kept box
that suppressed it) and scores the result against the true objects.
"""
import numpy as np

import tensorforge as tfg

from ._common import header

CLASSES = ("person", "car", "dog")
WIDTH, HEIGHT = 640, 480
IOU_THRESHOLD = 0.5


def _objects(rng, count):
    sizes = rng.uniform(40, 160, (count, 2))
    corners = rng.uniform(0, 1, (count, 2)) * (np.array([WIDTH, HEIGHT]) - sizes)
    boxes = np.concatenate([corners, corners + sizes], axis=1)
    return boxes, rng.integers(0, len(CLASSES), count)


def _candidates(rng, truth, labels):
    """The detector's raw boxes, scores and classes, plus the index of the true object each
    one was made from (-1 for a false alarm)."""
    boxes, scores, classes, source = [], [], [], []
    for index, (box, label) in enumerate(zip(truth, labels)):
        size = np.tile(box[2:] - box[:2], 2)
        count = int(rng.integers(4, 9))
        jitter = rng.normal(0, 0.06, (count, 4)) * size
        boxes.append(box + jitter)
        offness = np.abs(jitter / size).mean(axis=1)
        scores.append(np.clip(0.95 - 4 * offness - rng.uniform(0, 0.1, count), 0.3, 0.99))
        classes.append(np.full(count, label))
        source.append(np.full(count, index))
        if rng.random() < 0.4:
            boxes.append(box[None] + rng.normal(0, 0.04, (1, 4)) * size)
            scores.append(rng.uniform(0.2, 0.45, 1))
            classes.append(np.array([(label + 1) % len(CLASSES)]))
            source.append(np.array([-1]))
    alarms = len(truth) * 2
    corner = rng.uniform(0, 1, (alarms, 2)) * np.array([WIDTH - 60, HEIGHT - 60])
    boxes.append(np.concatenate([corner, corner + rng.uniform(20, 60, (alarms, 2))], axis=1))
    scores.append(rng.uniform(0.05, 0.35, alarms))
    classes.append(rng.integers(0, len(CLASSES), alarms))
    source.append(np.full(alarms, -1))
    boxes = np.clip(np.concatenate(boxes), 0, [WIDTH, HEIGHT, WIDTH, HEIGHT])
    return (boxes.astype(np.float32), np.concatenate(scores).astype(np.float32),
            np.concatenate(classes).astype(np.int64), np.concatenate(source))


def main(fast=False, seed=0, output=None):
    tfg.manual_seed(seed)
    rng = tfg.random.default_generator()
    truth, labels = _objects(rng, 4 if fast else 12)
    boxes, scores, classes, source = _candidates(rng, truth, labels)
    header("detect", f"{len(boxes)} raw boxes from a synthetic detector around {len(truth)} "
                     f"objects ({', '.join(CLASSES)}) on a {WIDTH}x{HEIGHT} image")

    keep = tfg.ops.batched_nms(tfg.from_numpy(boxes), tfg.from_numpy(scores),
                               tfg.from_numpy(classes), IOU_THRESHOLD).numpy()
    removed = np.setdiff1d(np.arange(len(boxes)), keep)
    print(f"batched_nms (IoU > {IOU_THRESHOLD} within a class): kept {len(keep)}, "
          f"removed {len(removed)}")
    print(f"  {'class':<8}{'raw':>6}{'kept':>6}{'removed':>9}")
    for c, name in enumerate(CLASSES):
        raw = int((classes == c).sum())
        kept = int((classes[keep] == c).sum())
        print(f"  {name:<8}{raw:>6}{kept:>6}{raw - kept:>9}")

    iou = tfg.ops.box_iou(boxes[removed], boxes[keep])
    iou = np.where(classes[removed][:, None] == classes[keep][None, :], iou, -1.0)
    suppressor = keep[np.argmax(iou, axis=1)]
    shown = removed[np.argsort(-scores[removed], kind="stable")][:4 if fast else 8]
    print("highest-scoring removed boxes (and the kept box that suppressed each):")
    for index in shown:
        row = int(np.flatnonzero(removed == index)[0])
        by = suppressor[row]
        print(f"  #{index:<3} {CLASSES[classes[index]]:<7} score {scores[index]:.2f} "
              f"[{', '.join(f'{v:.0f}' for v in boxes[index])}]  <- #{by} score "
              f"{scores[by]:.2f}, IoU {iou[row].max():.2f}")

    confident = keep[scores[keep] >= 0.5]
    truth_iou = tfg.ops.box_iou(boxes[confident], truth.astype(np.float32))
    same_class = classes[confident][:, None] == labels[None, :]
    matched = (truth_iou > 0.5) & same_class
    found = int(matched.any(axis=0).sum())
    correct = int(matched.any(axis=1).sum())
    print(f"kept boxes with score >= 0.5: {len(confident)}; they find {found} of {len(truth)} "
          f"objects, {correct} of them match an object of their class")
    share = 100 * len(removed) / len(boxes)
    print(f"NMS removed {len(removed)} of {len(boxes)} boxes ({share:.0f} %); "
          f"recall {100 * found / len(truth):.0f} %, "
          f"precision {100 * correct / max(len(confident), 1):.0f} % at score >= 0.5")
    return {"raw": len(boxes), "kept": len(keep), "removed": len(removed), "found": found,
            "objects": len(truth), "precision": correct / max(len(confident), 1)}
