"""The demo's timeline and summary, as a pipe and a terminal show them."""

from __future__ import annotations

import io

import pytest

from localcloud.demo import (
    Cost,
    DemoOptions,
    JourneyFailed,
    JourneyResult,
    RichTimeline,
    Timeline,
    summary_lines,
)


def _result() -> JourneyResult:
    bill = {"amountDue": "100.00", "currency": "GBP", "status": "Open"}
    paid = {**bill, "amountDue": "0.00", "status": "Paid"}
    return JourneyResult(
        options=DemoOptions(platform_key="qhyg"),
        company_id="demo-1",
        codat_company_id="c-1",
        company={"status": "READY"},
        bills_total=60,
        bills={"bill-0001": ("paid in full (product)", bill, paid)},
        payments=[
            {
                "paymentId": "demo-pay-full",
                "amount": "100.00",
                "status": "PAID",
                "attempts": 1,
                "history": [{"status": "PENDING"}, {"status": "SUBMITTED"}, {"status": "PAID"}],
            }
        ],
        cost=Cost(codat_calls=17, state_transitions=33, executions=5, lambda_invocations=71),
        seconds=12.5,
    )


def test_a_pipe_gets_each_row_as_a_line_with_its_time_and_each_steps_outcome():
    out = io.StringIO()
    timeline = Timeline(out)
    with timeline.step(1, "first"):
        timeline.note("found it")
        timeline.webhook("read.completed", 200, 12.3)
    with pytest.raises(JourneyFailed), timeline.step(2, "second"):
        raise JourneyFailed("no")
    lines = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines[0] == "1. first"
    assert lines[1:3] == ["   found it", "   webhook read.completed -> 200 (12 ms)"]
    assert lines[3].startswith("   done: step 1 in ")
    assert lines[4:] == ["2. second", lines[5]]
    assert lines[5].startswith("   FAILED: step 2 in ")


def test_the_summary_says_what_happened_and_what_it_cost():
    text = "\n".join(summary_lines(_result()))
    assert "company demo-1: READY on QuickBooks Online (Codat company c-1), 60 bills" in text
    assert "100.00 GBP due, Open ->       0.00 GBP due, Paid" in text
    assert "demo-pay-full" in text
    assert "PENDING > SUBMITTED > PAID" in text
    assert "cost: 17 Codat calls, 33 state transitions in 5 executions, 71 Lambda invocations" in (
        text
    )


def test_a_terminal_gets_the_same_rows_and_the_summary_as_tables():
    out = io.StringIO()
    timeline = RichTimeline(out)
    with timeline.step(1, "first"):
        timeline.note("found [it]")  # printed as text, not read as markup
        timeline.webhook("connection.connected", 200, 5)
    timeline.summary(_result())
    shown = out.getvalue()
    for words in (
        "1. first",
        "found [it]",
        "webhook connection.connected → 200",
        "done: step 1",
        "The journey's cost",
        "Lambda invocations",
        "journey complete in 12.5 s",
    ):
        assert words in shown, shown
