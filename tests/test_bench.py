"""The benchmarks' own arithmetic: FLOP counting (bench/bench_runtime.py, which bench_model.py uses too)."""

import importlib.util
import pathlib

import tensorflow as tf

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_graph_flops_counts_a_convolution_as_two_flops_per_multiply_add():
    bench_runtime = _load("bench_runtime")
    kernel = tf.zeros([3, 3, 8, 16])
    flops = bench_runtime.graph_flops(
        lambda x: tf.nn.conv2d(x, kernel, 1, "SAME"), tf.TensorSpec([1, 20, 30, 8], tf.float32)
    )
    assert flops == 2 * 3 * 3 * 8 * 16 * 20 * 30
