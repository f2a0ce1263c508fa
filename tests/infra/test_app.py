"""What the app takes from the CDK CLI and from cdk.json."""

import json

import pytest

from infra.app import CDK_JSON, ROOT, assembly_dir, build_app, cli_context, project_context


def test_the_app_writes_where_the_cdk_cli_asks(monkeypatch, tmp_path):
    # Given the CLI's output folder (`cdk synth --output DIR` sets CDK_OUTDIR for the app)
    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path))
    # When the app is built without an explicit folder
    app, _, _ = build_app(context={**project_context(), "aws:cdk:bundling-stacks": []})
    # Then the assembly goes there, where the CLI reads manifest.json
    assert app.outdir == str(tmp_path)


def test_a_direct_run_writes_to_cdk_json_output(monkeypatch):
    monkeypatch.delenv("CDK_OUTDIR", raising=False)
    output = json.loads(CDK_JSON.read_text())["output"]
    assert assembly_dir() == str(ROOT / output)


def test_direct_runs_read_cdk_json_context_and_flags(monkeypatch):
    monkeypatch.delenv("CDK_OUTDIR", raising=False)
    context = cli_context(["-c", "stage=prod"])
    assert context is not None
    assert context["stage"] == "prod"
    assert context["@aws-cdk/core:defaultCrossStackReferences"] == "strong"
    assert {k: v for k, v in context.items() if k != "stage"} == {
        k: v for k, v in project_context().items() if k != "stage"
    }


def test_under_the_cli_the_context_comes_from_the_cli(monkeypatch, tmp_path):
    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path))
    assert cli_context(["-c", "stage=prod"]) is None


@pytest.mark.parametrize("argv", [["stage=prod"], ["-c", "stage"], ["-c", "=prod"]])
def test_bad_arguments_to_a_direct_run_are_refused(monkeypatch, argv):
    monkeypatch.delenv("CDK_OUTDIR", raising=False)
    with pytest.raises(SystemExit):
        cli_context(argv)
