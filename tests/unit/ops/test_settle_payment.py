"""`python -m ops settle-payment`: the decision is one of --paid or --failed, with evidence and who
decides; bad arguments stop before anything is read (the command itself: tests/localcloud)."""

from __future__ import annotations

import pytest

from ops.__main__ import _parser

BASE = ["settle-payment", "--stage", "dev", "--company", "smb-1", "--payment", "pay-1",
        "--evidence", "platform payment 8841", "--operator", "ops@acme"]  # fmt: skip


def test_a_decision_reads_its_outcome_and_the_writes_dismissed():
    args = _parser().parse_args(
        [*BASE, "--failed", "--dismiss-write", "push-1", "--dismiss-write", "push-2"]
    )
    assert (args.outcome, args.dismiss_write, args.codat_payment_id) == (
        "FAILED",
        ["push-1", "push-2"],
        None,
    )
    assert _parser().parse_args([*BASE, "--paid", "--codat-payment-id", "cp-1"]).outcome == "PAID"


@pytest.mark.parametrize(
    "argv",
    [
        BASE,  # neither --paid nor --failed
        [*BASE, "--paid", "--failed"],
        [a for a in [*BASE, "--paid"] if a not in ("--evidence", "platform payment 8841")],
    ],
)
def test_an_incomplete_or_contradictory_decision_is_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args(argv)
    assert exit_.value.code == 2
    assert "settle-payment" in capsys.readouterr().err
