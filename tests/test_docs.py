"""Docs that match the code: every ``predict`` flag documented in docs/predict.md, and the reverse."""

import argparse
import pathlib
import re

from hdr_keras import predict

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_predict_flags_and_docs_options_table_match():
    parser = predict.build_parser()
    shown = {
        option
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    table = [line for line in (REPO / "docs" / "predict.md").read_text().splitlines() if line.startswith("| `--")]
    documented = {flag for line in table for flag in re.findall(r"`(--[a-z0-9_]+)", line.split(" | ")[0])}
    assert shown - documented == set(), "flags of predict --help missing from docs/predict.md's Options table"
    assert documented - shown == set(), "docs/predict.md documents flags that predict --help does not show"
